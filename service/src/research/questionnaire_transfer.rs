//! A questionnaire as a self-contained JSON document, to move it to another
//! client of the agency or of another agency: its title, kind and current
//! questions in order with every field, and their links named instead of
//! numbered — a choice factor by its name, a touchpoint by the keys of its
//! CJM stage and of itself, a barrier question's stage by its key. The
//! document holds no id of the source tenant.
//!
//! Importing resolves the links against the target client: factors among
//! its own (by exact name; with `create_missing_factors` a factor it lacks
//! is created), touchpoints by stage and key in its touchpoint library —
//! or, for a client without one, in the agency's libraries when exactly one
//! touchpoint there has that stage and key (clones of one library share
//! keys: then the client must name its library); stages likewise by key.
//! An unresolved link is a
//! 422 naming the question's field (`questions[3].choice_factor`). The
//! questionnaire is then checked and stored by the very code that creates
//! one from the API, in one transaction with the factors it creates, so a
//! failed import changes nothing. Exporting what was imported gives the
//! same document again.
use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::questions::{Question, QuestionInput, QuestionRole, QuestionType};
use crate::infra::audit::{self, Audit};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::platform::clients::find_client;
use crate::platform::touchpoint_refs::{
    StageRef, ids_by_ref, refs_by_id, stage_ids_by_key, stage_refs_by_id,
};
use crate::research::factors::{FactorInput, client_factors, insert_factor};
use crate::research::questionnaires::{
    CreateQuestionnaire, QuestionnaireView, check_new_questionnaire, find_questionnaire,
    insert_new_questionnaire, load_questions,
};
use crate::{Perm, RequestCtx, Services, infra::db};
use serde_json::json;

/// The `format` of every questionnaire document.
pub const FORMAT: &str = "growthpoint.questionnaire";
/// The document version this server writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A questionnaire that can move between clients and agencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "format": "growthpoint.questionnaire",
    "version": 1,
    "title": "Customer panel",
    "kind": "customer_panel",
    "questions": [
        {"key": "city", "label": "Where do you live?", "type": "single_choice", "role": "segment_attribute",
         "required": true, "options": ["msk", "spb"]},
        {"key": "price", "label": "How much does the price matter?", "type": "rating_1_5",
         "role": "choice_factor_importance", "required": false, "choice_factor": "Price"},
        {"key": "website", "label": "Rate our website", "type": "rating_1_5", "role": "touchpoint_rating",
         "required": false, "touchpoint": {"stage": "evaluation_choice", "key": "website", "name_en": "Website", "name_ru": "Сайт компании"}},
        {"key": "nps", "label": "Would you recommend us?", "type": "nps_0_10", "role": "nps", "required": false}
    ]
})))]
pub struct QuestionnaireDocument {
    /// Always `growthpoint.questionnaire`.
    pub format: String,
    /// The document format's version; this server reads and writes 1.
    #[schema(minimum = 1, maximum = 1)]
    pub version: u32,
    /// 1 to 300 characters.
    pub title: String,
    /// `customer_panel`, `segment_survey`, `mystery_shopper`, `non_buyer` or `brief`.
    pub kind: String,
    /// The current version's questions, in order (1 to 200).
    pub questions: Vec<DocumentQuestion>,
}

/// A question of a document: the fields of a question, links by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentQuestion {
    pub key: String,
    /// Defaults to the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub qtype: QuestionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<QuestionRole>,
    #[serde(default)]
    pub required: bool,
    /// Choice questions only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Number questions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The name of the choice factor a `choice_factor_importance` question
    /// measures, matched exactly among the target client's factors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice_factor: Option<String>,
    /// The touchpoint a `touchpoint_rating` or `touchpoint_idea` question is
    /// about, found in the target client's touchpoint library (without one:
    /// the one touchpoint of the agency's libraries with that stage and key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touchpoint: Option<DocumentTouchpoint>,
    /// The CJM stage a `barrier` question is about, found by key in the
    /// target client's touchpoint library (without one: the one stage of
    /// the agency's libraries with that key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<DocumentStage>,
}

/// A CJM stage by key: `key` finds it; the names are for people reading
/// the document and are not compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentStage {
    /// Its key in the library, e.g. `evaluation_choice`.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_ru: Option<String>,
}

/// A touchpoint by key: `stage` and `key` find it; the names are for
/// people reading the document and are not compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentTouchpoint {
    /// The key of its CJM stage, e.g. `evaluation_choice`.
    pub stage: String,
    /// Its key in the library, e.g. `website`.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_ru: Option<String>,
}

/// How an import treats links it cannot resolve.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportOptions {
    /// Create the choice factors the client lacks (by the names the
    /// document gives) instead of refusing the document. Touchpoints are
    /// never created: libraries are edited on their own.
    #[serde(default)]
    pub create_missing_factors: bool,
}

fn document_question(
    q: Question,
    factors: &HashMap<Uuid, String>,
    touchpoints: &HashMap<Uuid, crate::platform::touchpoint_refs::TouchpointRef>,
    stages: &HashMap<Uuid, StageRef>,
) -> DocumentQuestion {
    DocumentQuestion {
        key: q.key,
        label: Some(q.label),
        qtype: q.qtype,
        role: q.role,
        required: q.required,
        options: q.options,
        min: q.min,
        max: q.max,
        choice_factor: q.choice_factor_id.and_then(|id| factors.get(&id).cloned()),
        touchpoint: q
            .touchpoint_id
            .and_then(|id| touchpoints.get(&id))
            .map(|t| DocumentTouchpoint {
                stage: t.stage.clone(),
                key: t.key.clone(),
                name_en: Some(t.name_en.clone()),
                name_ru: Some(t.name_ru.clone()),
            }),
        stage: q
            .stage_id
            .and_then(|id| stages.get(&id))
            .map(|s| DocumentStage {
                key: s.key.clone(),
                name_en: Some(s.name_en.clone()),
                name_ru: Some(s.name_ru.clone()),
            }),
    }
}

/// Names a create-time error as the document names the field.
fn document_field(field: String) -> String {
    if let Some(p) = field.strip_suffix(".choice_factor_id") {
        format!("{p}.choice_factor")
    } else if let Some(p) = field.strip_suffix(".touchpoint_id") {
        format!("{p}.touchpoint")
    } else if let Some(p) = field.strip_suffix(".stage_id") {
        format!("{p}.stage")
    } else {
        field
    }
}

/// The links of a document resolved against one client.
#[derive(Default)]
struct Resolved {
    /// Per question: the factor id, or the name of one to create.
    factors: Vec<Option<Result<Uuid, String>>>,
    touchpoints: Vec<Option<Uuid>>,
    stages: Vec<Option<Uuid>>,
    errors: Vec<FieldError>,
}

impl Services {
    /// The questionnaire's current version as a document.
    pub async fn export_questionnaire(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<QuestionnaireDocument> {
        let q = find_questionnaire(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::Read)?;
        let questions = load_questions(&self.db, ctx.agency_id, id, q.version).await?;
        let factor_ids: BTreeSet<Uuid> = questions
            .iter()
            .filter_map(|q| q.choice_factor_id)
            .collect();
        let factors: HashMap<Uuid, String> = client_factors(&self.db, ctx.agency_id, q.client_id)
            .await?
            .into_iter()
            .filter(|f| factor_ids.contains(&f.id))
            .map(|f| (f.id, f.name))
            .collect();
        let touchpoints = refs_by_id(
            &self.db,
            ctx.agency_id,
            questions.iter().filter_map(|q| q.touchpoint_id).collect(),
        )
        .await?;
        let stages = stage_refs_by_id(
            &self.db,
            ctx.agency_id,
            questions.iter().filter_map(|q| q.stage_id).collect(),
        )
        .await?;
        Ok(QuestionnaireDocument {
            format: FORMAT.to_owned(),
            version: FORMAT_VERSION,
            title: q.title,
            kind: q.kind,
            questions: questions
                .into_iter()
                .map(|q| document_question(q, &factors, &touchpoints, &stages))
                .collect(),
        })
    }

    /// A new questionnaire of `client_id` from a document (see the module).
    pub async fn import_questionnaire(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        doc: QuestionnaireDocument,
        options: ImportOptions,
    ) -> AppResult<QuestionnaireView> {
        let client = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::WriteResearch)?;
        let mut errs = Vec::new();
        if doc.format != FORMAT {
            errs.push(FieldError::new("format", format!("must be {FORMAT}")));
        }
        if doc.version != FORMAT_VERSION {
            errs.push(FieldError::new(
                "version",
                format!("this server reads version {FORMAT_VERSION} only"),
            ));
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let resolved = self.resolve_links(&client, &doc, options).await?;
        let txn = db::begin_write(&self.db).await?;
        // Factors to create come first, so the checks below find them.
        let mut created: HashMap<String, Uuid> = HashMap::new();
        let mut position = client_factors(&txn, ctx.agency_id, client_id)
            .await?
            .iter()
            .map(|f| f.position)
            .max()
            .unwrap_or(-1);
        for name in resolved
            .factors
            .iter()
            .flatten()
            .filter_map(|f| f.clone().err())
        {
            if created.contains_key(&name) {
                continue;
            }
            position = position.saturating_add(1);
            let input = FactorInput {
                name: name.clone(),
                description: None,
                position: Some(position),
            };
            let f = insert_factor(&txn, ctx.agency_id, client_id, input).await?;
            created.insert(name, f.id);
        }
        let questions = doc
            .questions
            .into_iter()
            .enumerate()
            .map(|(i, q)| {
                // An unresolved link stands in as the nil id: the checks
                // below then judge everything else, and their complaint
                // about the link itself is dropped for the resolver's.
                let factor = match resolved.factors.get(i).cloned().flatten() {
                    Some(Ok(id)) => Some(id),
                    Some(Err(name)) => Some(created.get(&name).copied().unwrap_or(Uuid::nil())),
                    None => q.choice_factor.as_ref().map(|_| Uuid::nil()),
                };
                let touchpoint = resolved
                    .touchpoints
                    .get(i)
                    .copied()
                    .flatten()
                    .or(q.touchpoint.as_ref().map(|_| Uuid::nil()));
                let stage = resolved
                    .stages
                    .get(i)
                    .copied()
                    .flatten()
                    .or(q.stage.as_ref().map(|_| Uuid::nil()));
                QuestionInput {
                    key: q.key,
                    label: q.label,
                    qtype: q.qtype,
                    role: q.role,
                    required: q.required,
                    options: q.options,
                    min: q.min,
                    max: q.max,
                    choice_factor_id: factor,
                    touchpoint_id: touchpoint,
                    stage_id: stage,
                }
            })
            .collect();
        let input = CreateQuestionnaire {
            title: doc.title,
            kind: doc.kind,
            questions,
        };
        let checked = check_new_questionnaire(&txn, ctx.agency_id, client_id, input).await;
        let mut errs = resolved.errors;
        let new = match checked {
            Ok(new) if errs.is_empty() => new,
            Ok(_) => return Err(AppError::Validation(errs)),
            Err(AppError::Validation(more)) => {
                let named: BTreeSet<String> = errs.iter().map(|e| e.field.clone()).collect();
                errs.extend(
                    more.into_iter()
                        .map(|mut e| {
                            e.field = document_field(e.field);
                            e
                        })
                        .filter(|e| !named.contains(&e.field)),
                );
                return Err(AppError::Validation(errs));
            }
            Err(other) => return Err(other),
        };
        let id = insert_new_questionnaire(&txn, ctx.agency_id, client_id, new).await?;
        let imported = json!({"created_factors": created.len()});
        let a = Audit::new("questionnaire", "import", Some(id)).with(imported);
        audit::commit(txn, ctx, a).await?;
        self.get_questionnaire(ctx, id).await
    }

    /// Finds each question's factor and touchpoint for `client`.
    async fn resolve_links(
        &self,
        client: &entity::client::Model,
        doc: &QuestionnaireDocument,
        options: ImportOptions,
    ) -> AppResult<Resolved> {
        let mut out = Resolved::default();
        let mut by_name: HashMap<String, Vec<Uuid>> = HashMap::new();
        for f in client_factors(&self.db, client.agency_id, client.id).await? {
            by_name.entry(f.name).or_default().push(f.id);
        }
        let library = if doc.questions.iter().any(|q| q.touchpoint.is_some()) {
            ids_by_ref(&self.db, client.agency_id, client.touchpoint_library_id).await?
        } else {
            HashMap::new()
        };
        let stages = if doc.questions.iter().any(|q| q.stage.is_some()) {
            stage_ids_by_key(&self.db, client.agency_id, client.touchpoint_library_id).await?
        } else {
            HashMap::new()
        };
        let within = if client.touchpoint_library_id.is_some() {
            "the client's touchpoint library"
        } else {
            "the agency's touchpoint libraries"
        };
        for (i, q) in doc.questions.iter().enumerate() {
            let factor = match &q.choice_factor {
                None => None,
                Some(name) => {
                    match by_name.get(name.trim()).map(Vec::as_slice) {
                        Some([id]) => Some(Ok(*id)),
                        Some(_) => {
                            out.errors.push(FieldError::new(
                            format!("questions[{i}].choice_factor"),
                            format!("the client has several choice factors named {name:?}; rename one"),
                        ));
                            None
                        }
                        None if options.create_missing_factors => {
                            let n = name.trim().chars().count();
                            if n == 0 || n > 200 {
                                out.errors.push(FieldError::new(
                                    format!("questions[{i}].choice_factor"),
                                    "a factor's name is 1 to 200 characters",
                                ));
                                None
                            } else {
                                Some(Err(name.trim().to_owned()))
                            }
                        }
                        None => {
                            out.errors.push(FieldError::new(
                            format!("questions[{i}].choice_factor"),
                            format!(
                                "the client has no choice factor named {name:?} (create it, or import with create_missing_factors=true)"
                            ),
                        ));
                            None
                        }
                    }
                }
            };
            out.factors.push(factor);
            let touchpoint = q.touchpoint.as_ref().and_then(|t| {
                let found = library.get(&(t.stage.clone(), t.key.clone()));
                let why = match found.map(Vec::as_slice) {
                    Some([id]) => return Some(*id),
                    Some(_) => format!(
                        "{within} have several touchpoints {:?} under stage {:?}; set the client's touchpoint_library_id to choose",
                        t.key, t.stage
                    ),
                    None => format!(
                        "no touchpoint {:?} under stage {:?} in {within}",
                        t.key, t.stage
                    ),
                };
                out.errors
                    .push(FieldError::new(format!("questions[{i}].touchpoint"), why));
                None
            });
            out.touchpoints.push(touchpoint);
            let stage = q.stage.as_ref().and_then(|st| {
                let why = match stages.get(&st.key).map(Vec::as_slice) {
                    Some([id]) => return Some(*id),
                    Some(_) => format!(
                        "{within} have several stages {:?}; set the client's touchpoint_library_id to choose",
                        st.key
                    ),
                    None => format!("no stage {:?} in {within}", st.key),
                };
                out.errors
                    .push(FieldError::new(format!("questions[{i}].stage"), why));
                None
            });
            out.stages.push(stage);
        }
        Ok(out)
    }
}
