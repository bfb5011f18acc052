//! The live report page (`GET /r/{token}`): a server-rendered, read-only
//! HTML page of one client — its latest customer panel (n, NPS with CI,
//! choice factors ranked with CIs and a chart), hypotheses with verdicts,
//! QFD priorities, UX-map flags and Cash Journey scenarios, each stamped
//! with its data version and computed time — in the client's language and
//! the agency's colours, for a link made in `platform::report_links`.
//!
//! The figures come from the very service calls the REST endpoints use
//! (`questionnaire_panel`, `hypotheses_results`, `qfd`, `ux_map`,
//! `cash_results`), made as a read-only viewer of the link's agency: the
//! page never computes a figure of its own. A token that is malformed,
//! forged (another MAC, another client's or agency's link), expired or
//! revoked gets the same 404 page, which names nothing.
mod chart;
mod html;

use chrono::Utc;
use entity::{client, questionnaire};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tracing::Instrument;
use uuid::Uuid;

use crate::infra::email::links::LinkSigner;
use crate::infra::error::{AppError, AppResult};
use crate::infra::page::PageParams;
use crate::platform::{agency, clients, report_links};
use crate::{Principal, RequestCtx, Role, Services, now};

pub use html::{Page, not_found};

/// Cash Journey models shown at most (the newest are not favoured: by id).
const MAX_MODELS: u64 = 20;

/// What the page shows, each part as its own service call answered.
pub struct ReportData {
    pub client: client::Model,
    pub brand: crate::infra::email::render::Brand,
    pub panel: Option<(questionnaire::Model, crate::research::panel::PanelView)>,
    pub hypotheses: Option<crate::research::hypotheses::HypothesesResults>,
    pub qfd: Option<crate::research::qfd::QfdView>,
    pub ux: Option<crate::research::ux::UxMapView>,
    pub cash: Vec<crate::commerce::cash::CashResultsView>,
    /// Touchpoint id → name in the client's language.
    pub touchpoints: std::collections::HashMap<String, String>,
}

/// A part that cannot be computed (no library for the QFD, a model that
/// is being changed) is left out; an outage is not hidden.
fn optional<T>(part: &str, r: AppResult<T>) -> AppResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e @ AppError::DatabaseUnavailable(_)) => Err(e),
        Err(e) => {
            tracing::debug!(part, error = %e, "report part left out");
            Ok(None)
        }
    }
}

/// The link `token` names, if it is genuine, unrevoked and unexpired.
async fn valid_link(
    s: &Services,
    links: &LinkSigner,
    token: &str,
) -> AppResult<Option<entity::report_link::Model>> {
    let Some(claim) = LinkSigner::report_claim(token) else {
        return Ok(None);
    };
    let Some(link) = report_links::find_by_id(&s.db, claim.link_id).await? else {
        return Ok(None);
    };
    let genuine = links
        .verify_report(token, link.agency_id, link.client_id)
        .is_some_and(|c| c == report_links::claim_of(&link));
    Ok((genuine && report_links::status_of(&link, now()) == "active").then_some(link))
}

impl Services {
    /// The page of `token`: the client's report, or the 404 page.
    pub async fn report_page(&self, token: &str) -> AppResult<Page> {
        let Some(link) = valid_link(self, &self.links, token).await? else {
            return Ok(not_found());
        };
        let span = tracing::info_span!(
            "report_page",
            agency_id = %link.agency_id,
            client_id = %link.client_id
        );
        let data = self
            .report_data(link.agency_id, link.client_id)
            .instrument(span)
            .await?;
        match data {
            Some(data) => html::render(&data, Utc::now()),
            None => Ok(not_found()),
        }
    }

    /// The figures of `client_id`'s report, read as a viewer of its agency;
    /// None for an archived (or deleted) client.
    pub async fn report_data(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
    ) -> AppResult<Option<ReportData>> {
        let client = match clients::find_client(&self.db, agency_id, client_id).await {
            Ok(c) if c.archived_at.is_none() => c,
            Ok(_) | Err(AppError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let ctx = RequestCtx {
            agency_id,
            principal: Principal::User(Uuid::nil()),
            role: Some(Role::Viewer),
            scopes: Vec::new(),
            request_id: None,
        };
        let brand = agency::brand_of(&self.db, agency_id).await?;
        // The newest customer panel, as the QFD takes its importances.
        let latest = questionnaire::Entity::find()
            .filter(questionnaire::Column::AgencyId.eq(agency_id))
            .filter(questionnaire::Column::ClientId.eq(client_id))
            .filter(questionnaire::Column::Kind.eq("customer_panel"))
            .order_by_desc(questionnaire::Column::Id)
            .one(&self.db)
            .await?;
        let panel = match latest {
            Some(q) => {
                optional("panel", self.questionnaire_panel(&ctx, q.id, None).await)?.map(|p| (q, p))
            }
            None => None,
        };
        let hypotheses = optional("hypotheses", self.hypotheses_results(&ctx, client_id).await)?;
        let qfd = optional("qfd", self.qfd(&ctx, client_id, None, None).await)?;
        let ux = optional("ux", self.ux_map(&ctx, client_id, None).await)?;
        let models = self
            .list_cash_models(
                &ctx,
                client_id,
                PageParams {
                    limit: Some(MAX_MODELS),
                    after: None,
                },
            )
            .await?;
        let mut cash = Vec::new();
        for m in models.items {
            if let Some(r) = optional("cash", self.cash_results(&ctx, m.id).await)? {
                cash.push(r);
            }
        }
        let touchpoints = self
            .touchpoint_names(agency_id, client.locale == "ru", qfd.as_ref(), ux.as_ref())
            .await?;
        Ok(Some(ReportData {
            client,
            brand,
            panel,
            hypotheses,
            qfd,
            ux,
            cash,
            touchpoints,
        }))
    }

    /// Names of the touchpoints the QFD and the UX map mention.
    async fn touchpoint_names(
        &self,
        agency_id: Uuid,
        ru: bool,
        qfd: Option<&crate::research::qfd::QfdView>,
        ux: Option<&crate::research::ux::UxMapView>,
    ) -> AppResult<std::collections::HashMap<String, String>> {
        let mut ids: Vec<Uuid> = Vec::new();
        if let Some(q) = qfd {
            ids.extend(
                q.priorities
                    .iter()
                    .filter_map(|p| Uuid::parse_str(&p.touchpoint_id).ok()),
            );
        }
        if let Some(u) = ux {
            ids.extend(
                u.map
                    .by_touchpoint
                    .iter()
                    .filter_map(|t| Uuid::parse_str(&t.touchpoint_id).ok()),
            );
        }
        if ids.is_empty() {
            return Ok(Default::default());
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(entity::touchpoint::Entity::find()
            .filter(entity::touchpoint::Column::AgencyId.eq(agency_id))
            .filter(entity::touchpoint::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.id.to_string(), if ru { t.name_ru } else { t.name_en }))
            .collect())
    }
}
