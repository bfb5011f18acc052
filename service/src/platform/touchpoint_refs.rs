//! Touchpoints named by the key of their CJM stage and their own key, and
//! stages by their key: how a questionnaire document refers to them across
//! clients and agencies, where ids mean nothing. Keys are unique within a
//! library (names are for people, and translated).
use std::collections::{BTreeSet, HashMap};

use entity::{cjm_stage, question, questionnaire, touchpoint};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::infra::error::AppResult;

/// A touchpoint as another library can find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TouchpointRef {
    /// The key of its CJM stage.
    pub stage: String,
    pub key: String,
    pub name_en: String,
    pub name_ru: String,
}

/// A CJM stage as another library can find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRef {
    pub key: String,
    pub name_en: String,
    pub name_ru: String,
}

/// The references of the agency's stages among `ids` (others are left out).
pub async fn stage_refs_by_id<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    ids: BTreeSet<Uuid>,
) -> AppResult<HashMap<Uuid, StageRef>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(cjm_stage::Entity::find()
        .filter(cjm_stage::Column::AgencyId.eq(agency_id))
        .filter(cjm_stage::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|s| {
            let r = StageRef {
                key: s.key,
                name_en: s.name_en,
                name_ru: s.name_ru,
            };
            (s.id, r)
        })
        .collect())
}

/// The stages of one of the agency's libraries (or, without one, of all
/// its libraries) by key; within one library a key names one stage.
pub async fn stage_ids_by_key<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    library_id: Option<Uuid>,
) -> AppResult<HashMap<String, Vec<Uuid>>> {
    let mut stages = cjm_stage::Entity::find().filter(cjm_stage::Column::AgencyId.eq(agency_id));
    if let Some(lib) = library_id {
        stages = stages.filter(cjm_stage::Column::LibraryId.eq(lib));
    }
    let mut out: HashMap<String, Vec<Uuid>> = HashMap::new();
    for s in stages.all(db).await? {
        out.entry(s.key).or_default().push(s.id);
    }
    Ok(out)
}

/// The stage keys of stages of the agency, by id.
async fn stage_keys<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    ids: BTreeSet<Uuid>,
) -> AppResult<HashMap<Uuid, String>> {
    Ok(stage_refs_by_id(db, agency_id, ids)
        .await?
        .into_iter()
        .map(|(id, s)| (id, s.key))
        .collect())
}

/// The references of the agency's touchpoints among `ids` (others are
/// left out).
pub async fn refs_by_id<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    ids: BTreeSet<Uuid>,
) -> AppResult<HashMap<Uuid, TouchpointRef>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let tps = touchpoint::Entity::find()
        .filter(touchpoint::Column::AgencyId.eq(agency_id))
        .filter(touchpoint::Column::Id.is_in(ids))
        .all(db)
        .await?;
    let stages = stage_keys(db, agency_id, tps.iter().map(|t| t.stage_id).collect()).await?;
    Ok(tps
        .into_iter()
        .filter_map(|t| {
            let stage = stages.get(&t.stage_id)?.clone();
            Some((
                t.id,
                TouchpointRef {
                    stage,
                    key: t.key,
                    name_en: t.name_en,
                    name_ru: t.name_ru,
                },
            ))
        })
        .collect())
}

/// The touchpoints of one of the agency's libraries (or, without one, of
/// all its libraries) by (stage key, key); within one library each pair
/// names one touchpoint, across clones of a library several.
pub async fn ids_by_ref<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    library_id: Option<Uuid>,
) -> AppResult<HashMap<(String, String), Vec<Uuid>>> {
    let mut stages = cjm_stage::Entity::find().filter(cjm_stage::Column::AgencyId.eq(agency_id));
    let mut tps = touchpoint::Entity::find().filter(touchpoint::Column::AgencyId.eq(agency_id));
    if let Some(lib) = library_id {
        stages = stages.filter(cjm_stage::Column::LibraryId.eq(lib));
        tps = tps.filter(touchpoint::Column::LibraryId.eq(lib));
    }
    let stages: HashMap<Uuid, String> = stages
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id, s.key))
        .collect();
    let mut out: HashMap<(String, String), Vec<Uuid>> = HashMap::new();
    for t in tps.all(db).await? {
        if let Some(stage) = stages.get(&t.stage_id) {
            out.entry((stage.clone(), t.key)).or_default().push(t.id);
        }
    }
    Ok(out)
}

/// What a question can point at in a touchpoint library.
#[derive(Debug, Clone, Copy)]
pub enum Referenced {
    Stage(Uuid),
    Touchpoint(Uuid),
}

/// The titles of the agency's questionnaires whose current questions
/// point at `r` (older versions keep their references: their responses
/// were asked that way), in title order.
pub async fn questionnaires_using<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    r: Referenced,
) -> AppResult<Vec<String>> {
    let q = question::Entity::find().filter(question::Column::AgencyId.eq(agency_id));
    let q = match r {
        Referenced::Stage(id) => q.filter(question::Column::StageId.eq(id)),
        Referenced::Touchpoint(id) => q.filter(question::Column::TouchpointId.eq(id)),
    };
    let asked: BTreeSet<(Uuid, i32)> = q
        .all(db)
        .await?
        .into_iter()
        .map(|q| (q.questionnaire_id, q.version))
        .collect();
    if asked.is_empty() {
        return Ok(Vec::new());
    }
    let ids: BTreeSet<Uuid> = asked.iter().map(|(id, _)| *id).collect();
    Ok(questionnaire::Entity::find()
        .filter(questionnaire::Column::AgencyId.eq(agency_id))
        .filter(questionnaire::Column::Id.is_in(ids))
        .order_by_asc(questionnaire::Column::Title)
        .all(db)
        .await?
        .into_iter()
        .filter(|qn| asked.contains(&(qn.id, qn.version)))
        .map(|qn| qn.title)
        .collect())
}
