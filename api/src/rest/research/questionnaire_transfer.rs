//! A questionnaire as a JSON document: export it, import it into a client
//! of this agency (the document may come from another agency).
use actix_web::{HttpResponse, get, post, web};
use service::questionnaire_transfer::{ImportOptions, QuestionnaireDocument};
use service::questionnaires::QuestionnaireView;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, created, ok};

/// Export a questionnaire's current version as a self-contained document:
/// its questions in order with every field, choice factors by name and
/// touchpoints by stage and key, no ids. `POST
/// /clients/{id}/questionnaires/import` takes it as it is.
#[utoipa::path(tag = "questionnaires", params(("id" = Uuid, Path)), responses((status = 200, body = QuestionnaireDocument), Errors), security(("bearer" = [])))]
#[get("/questionnaires/{id}/export")]
async fn export_questionnaire(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.export_questionnaire(&ctx, *id).await?))
}

/// Create a questionnaire of the client from an exported document. Choice
/// factors are found by exact name among the client's (or created, with
/// `create_missing_factors=true`), touchpoints by stage and key in the
/// client's touchpoint library (without one: the one touchpoint of the
/// agency's libraries with that stage and key); a link not found is a 422
/// naming it, e.g.
/// `questions[3].choice_factor`. The questions are checked as on `POST
/// /clients/{id}/questionnaires`; nothing is stored unless all is well.
#[utoipa::path(tag = "questionnaires", params(("id" = Uuid, Path, description = "client id"), ImportOptions), request_body = QuestionnaireDocument, responses((status = 201, body = QuestionnaireView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/questionnaires/import")]
async fn import_questionnaire(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    options: web::Query<ImportOptions>,
    JsonBody(doc): JsonBody<QuestionnaireDocument>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state
            .services
            .import_questionnaire(&ctx, *id, doc, options.into_inner())
            .await?,
    ))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(export_questionnaire)
        .service(import_questionnaire);
}
