//! Email previews: any email a client would get, rendered as it would be
//! sent now, for the agency to check before it goes out.
use entity::ux_alert;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::infra::error::AppResult;
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services};

impl Services {
    /// The email of `kind` for a client as it would be sent now.
    pub async fn preview_email(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        kind: &str,
    ) -> AppResult<crate::infra::email::Rendered> {
        let client = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        match kind {
            "ux_alerts" => {
                use sea_orm::IntoActiveModel;
                let open: Vec<ux_alert::ActiveModel> = ux_alert::Entity::find()
                    .filter(ux_alert::Column::AgencyId.eq(ctx.agency_id))
                    .filter(ux_alert::Column::ClientId.eq(client_id))
                    .filter(ux_alert::Column::ClearedAt.is_null())
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(IntoActiveModel::into_active_model)
                    .collect();
                if open.is_empty() {
                    return Err(crate::AppError::Conflict(
                        "the client has no open UX alerts to show".into(),
                    ));
                }
                // In the language the caller would get it in.
                let own = match ctx.user_id() {
                    Some(id) => entity::user::Entity::find_by_id(id)
                        .one(&self.db)
                        .await?
                        .and_then(|u| u.locale),
                    None => None,
                };
                self.ux_alert_renderer(&client, &open)
                    .await?
                    .render(own.as_deref().unwrap_or(&client.locale))
            }
            "digest" => self.preview_digest(ctx, client_id).await,
            _ => Err(crate::AppError::field(
                "kind",
                "must be ux_alerts or digest",
            )),
        }
    }
}
