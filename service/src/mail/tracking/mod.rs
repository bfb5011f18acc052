//! Engagement tracking of campaign emails: an open pixel and click-through
//! redirects, both signed per delivery, recorded as `email_events`.
//!
//! - Rendering: [`track_html`] rewrites every `http(s)` link of a
//!   campaign's own HTML to `/api/v1/public/t/c/{token}?u=…&s=…` (`s`: a
//!   MAC over the delivery id and the exact URL) and appends a 1×1 pixel
//!   `/api/v1/public/t/o/{token}`. Only the campaign body is rewritten: the
//!   layout's unsubscribe link, `mailto:`, anchors and links to our own
//!   public pages stay as they are. The plain-text part keeps its links
//!   (a wrapped URL there is long, looks like phishing and is copied by
//!   hand as often as clicked), so its clicks are not counted. Clients with
//!   `track_engagement = false` get neither pixel nor rewritten links.
//! - Recording: the public routes carry no tenant; they act only on the
//!   delivery the signed token names. Every hit is a row (the raw log);
//!   stats count unique recipients. Hits are recorded for newsletter
//!   deliveries of clients that still track: a test send carries the same
//!   links (so what is tested is what subscribers get) but records nothing,
//!   and switching tracking off also stops recording mail already sent.
//! - Known limits, as in every ESP: image proxies that prefetch (Apple Mail
//!   Privacy Protection) count as opens, and link scanners as clicks; mail
//!   clients that block images count no open unless the reader clicks —
//!   which is why a click counts as an open in [`unique_engagement`].
pub mod html;

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use entity::{client, email_delivery, email_event};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;

use crate::infra::email::links::{LinkSigner, Purpose};
use crate::infra::error::{AppError, AppResult};
use crate::{Services, new_id, now};

/// Event kinds.
pub const OPENED: &str = "opened";
pub const CLICKED: &str = "clicked";

/// The delivery kinds whose hits are recorded; a chain's emails join by
/// rendering through [`track_html`] with the id they are queued under
/// ([`crate::infra::email::enqueue_with_ids`]) and adding their kind here.
pub const TRACKED_KINDS: &[&str] = &["newsletter", "chain"];

/// A stored user agent is cut to this many characters.
pub const MAX_USER_AGENT: usize = 512;

/// The campaign body `html` of `delivery` with its links wrapped and the
/// open pixel appended.
pub fn track_html(links: &LinkSigner, delivery: Uuid, html: &str) -> String {
    let own = format!("{}/api/v1/public/", links.public_url);
    let wrapped = html::rewrite_links(html, |href| {
        trackable(href, &own).map(|url| links.click_url(delivery, &url))
    });
    html::append_pixel(&wrapped, &links.url(Purpose::Open, delivery))
}

/// The URL a click-through should lead to, if `href` is one to track: an
/// absolute `http(s)` URL that is not one of our own public links. A URL
/// with characters a `Location` header cannot carry (spaces, non-ASCII) is
/// taken in its normalised, percent-encoded form — where a browser would
/// have gone anyway; others are kept exactly as written.
fn trackable(href: &str, own_public: &str) -> Option<String> {
    let href = href.trim();
    let scheme = href
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !(scheme.starts_with("http://") || scheme.starts_with("https://")) {
        return None;
    }
    if href.starts_with(own_public) {
        return None;
    }
    let parsed = url::Url::parse(href).ok()?;
    if href.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        Some(href.to_owned())
    } else {
        Some(parsed.into())
    }
}

/// What a recipient did with a client's campaign emails, last: for scoring
/// rules and chain conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastEngagement {
    pub opened: Option<DateTime<Utc>>,
    pub clicked: Option<DateTime<Utc>>,
}

/// Per recipient (lowercased email) of `client_id`'s campaign emails, the
/// time of the latest open and the latest click; recipients with no event
/// are absent (`only`: of these addresses). One grouped query over the `(agency_id, client_id, email,
/// kind, created_at)` index.
pub async fn last_events<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    only: Option<&[String]>,
) -> AppResult<HashMap<String, LastEngagement>> {
    let mut q = email_event::Entity::find()
        .filter(email_event::Column::AgencyId.eq(agency_id))
        .filter(email_event::Column::ClientId.eq(client_id));
    if let Some(emails) = only {
        q = q.filter(email_event::Column::Email.is_in(emails.to_vec()));
    }
    let rows: Vec<(String, String, Option<DateTime<Utc>>)> = q
        .select_only()
        .column(email_event::Column::Email)
        .column(email_event::Column::Kind)
        .column_as(email_event::Column::CreatedAt.max(), "last")
        .group_by(email_event::Column::Email)
        .group_by(email_event::Column::Kind)
        .into_tuple()
        .all(db)
        .await
        .context("while reading the last email events")?;
    let mut out: HashMap<String, LastEngagement> = HashMap::new();
    for (email, kind, last) in rows {
        let e = out.entry(email).or_default();
        match kind.as_str() {
            OPENED => e.opened = last,
            CLICKED => e.clicked = last,
            _ => {}
        }
    }
    Ok(out)
}

/// Erasure of a recipient (GDPR): the opens and clicks of `email` in
/// `client_id`'s emails go, in the caller's transaction. Its deliveries are
/// blanked to [`ERASED`] by the caller, so later hits record nothing.
pub async fn erase_events<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    email: &str,
) -> AppResult<u64> {
    Ok(email_event::Entity::delete_many()
        .filter(email_event::Column::AgencyId.eq(agency_id))
        .filter(email_event::Column::ClientId.eq(client_id))
        .filter(email_event::Column::Email.eq(email.to_lowercase()))
        .exec(db)
        .await
        .context("while erasing a recipient's email events")?
        .rows_affected)
}

/// The recipient of an erased subscriber's deliveries.
pub const ERASED: &str = "erased";

/// Unique engagement of one campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UniqueEngagement {
    /// Recipients who opened or clicked (a click is an open whose pixel
    /// the mail client did not load).
    pub opens: i64,
    /// Recipients who clicked a link.
    pub clicks: i64,
}

/// Unique opens and clicks of the agency's `campaigns`, in one query;
/// campaigns without events are absent.
pub async fn unique_engagement<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    campaigns: &[Uuid],
) -> AppResult<HashMap<Uuid, UniqueEngagement>> {
    if campaigns.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Option<Uuid>, i64, i64)> = email_event::Entity::find()
        .filter(email_event::Column::AgencyId.eq(agency_id))
        .filter(email_event::Column::CampaignId.is_in(campaigns.iter().copied()))
        .select_only()
        .column(email_event::Column::CampaignId)
        .column_as(Expr::cust("COUNT(DISTINCT email)"), "opens")
        .column_as(
            Expr::cust("COUNT(DISTINCT CASE WHEN kind = 'clicked' THEN email END)"),
            "clicks",
        )
        .group_by(email_event::Column::CampaignId)
        .into_tuple()
        .all(db)
        .await
        .context("while counting campaign engagement")?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, opens, clicks)| Some((id?, UniqueEngagement { opens, clicks })))
        .collect())
}

/// What a hit needs of its delivery: agency, client, kind, campaign (the
/// source of a newsletter copy) and recipient.
type DeliveryRow = (Uuid, Option<Uuid>, String, Option<Uuid>, String);

/// Clicks on one link of a campaign.
#[derive(
    Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema, async_graphql::SimpleObject,
)]
pub struct LinkClicks {
    /// The URL the email linked to.
    pub url: String,
    /// Every click (the raw log).
    pub clicks: i64,
    /// Recipients who clicked it; each counted once.
    pub unique_clicks: i64,
}

/// The clicked links of the agency's `campaign`, most unique clickers
/// first (links nobody clicked are not listed: the links can differ per
/// recipient, so only the log knows them).
pub async fn link_clicks<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    campaign: Uuid,
) -> AppResult<Vec<LinkClicks>> {
    let rows: Vec<(Option<String>, i64, i64)> = email_event::Entity::find()
        .filter(email_event::Column::AgencyId.eq(agency_id))
        .filter(email_event::Column::CampaignId.eq(campaign))
        .filter(email_event::Column::Kind.eq(CLICKED))
        .select_only()
        .column(email_event::Column::Url)
        .column_as(Expr::cust("COUNT(*)"), "clicks")
        .column_as(Expr::cust("COUNT(DISTINCT email)"), "unique_clicks")
        .group_by(email_event::Column::Url)
        .into_tuple()
        .all(db)
        .await
        .context("while counting a campaign's link clicks")?;
    let mut out: Vec<LinkClicks> = rows
        .into_iter()
        .filter_map(|(url, clicks, unique_clicks)| {
            Some(LinkClicks {
                url: url?,
                clicks,
                unique_clicks,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (b.unique_clicks, b.clicks)
            .cmp(&(a.unique_clicks, a.clicks))
            .then_with(|| a.url.cmp(&b.url))
    });
    Ok(out)
}

impl Services {
    /// Public: the open pixel was fetched. Records an `opened` event when
    /// the token is genuine and its delivery is tracked; returns whether
    /// it did. A forged or unknown token records nothing (the pixel is
    /// served either way, so mail clients show no broken image).
    pub async fn record_open(&self, token: &str, user_agent: Option<&str>) -> AppResult<bool> {
        let Some(delivery) = self.links.verify(Purpose::Open, token) else {
            return Ok(false);
        };
        self.record(delivery, OPENED, None, user_agent).await
    }

    /// Public: a click-through. Returns the URL to redirect to, only when
    /// the token is genuine and `signature` is the MAC of exactly this
    /// delivery and `url` — the links the email contained and nothing
    /// else; otherwise not found. The click is recorded as [`record_open`]
    /// records opens; the redirect does not depend on that (a signed link
    /// whose delivery row is gone still leads where the email said).
    ///
    /// [`record_open`]: Services::record_open
    pub async fn follow_click(
        &self,
        token: &str,
        url: &str,
        signature: &str,
        user_agent: Option<&str>,
    ) -> AppResult<String> {
        let delivery = self
            .links
            .verify(Purpose::Click, token)
            .ok_or(AppError::NotFound)?;
        if !self.links.verify_url(delivery, url, signature) {
            return Err(AppError::NotFound);
        }
        self.record(delivery, CLICKED, Some(url), user_agent)
            .await?;
        Ok(url.to_owned())
    }

    /// Stores one event about `delivery` if it is a newsletter copy of a
    /// client that tracks engagement, to a recipient not erased.
    async fn record(
        &self,
        delivery: Uuid,
        kind: &str,
        url: Option<&str>,
        user_agent: Option<&str>,
    ) -> AppResult<bool> {
        // Not the body: a hit reads a few columns of one row.
        let row: Option<DeliveryRow> = email_delivery::Entity::find_by_id(delivery)
            .select_only()
            .column(email_delivery::Column::AgencyId)
            .column(email_delivery::Column::ClientId)
            .column(email_delivery::Column::Kind)
            .column(email_delivery::Column::SourceId)
            .column(email_delivery::Column::Recipient)
            .into_tuple()
            .one(&self.db)
            .await
            .context("while reading a tracked delivery")?;
        let Some((agency_id, Some(client_id), kind_of_delivery, campaign_id, recipient)) = row
        else {
            return Ok(false);
        };
        if !TRACKED_KINDS.contains(&kind_of_delivery.as_str()) || recipient == ERASED {
            return Ok(false);
        }
        let tracks: Option<bool> = client::Entity::find_by_id(client_id)
            .filter(client::Column::AgencyId.eq(agency_id))
            .select_only()
            .column(client::Column::TrackEngagement)
            .into_tuple()
            .one(&self.db)
            .await
            .context("while reading the client's tracking setting")?;
        if tracks != Some(true) {
            return Ok(false);
        }
        email_event::Entity::insert(email_event::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(agency_id),
            client_id: Set(client_id),
            delivery_id: Set(delivery),
            campaign_id: Set(campaign_id),
            email: Set(recipient.to_lowercase()),
            kind: Set(kind.to_owned()),
            url: Set(url.map(str::to_owned)),
            user_agent: Set(user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT).collect())),
            created_at: Set(now()),
        })
        .exec_without_returning(&self.db)
        .await
        .context("while recording an email event")?;
        tracing::debug!(%agency_id, %client_id, %delivery, kind, "email event");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "http://api.example/api/v1/public/";

    #[test]
    fn only_absolute_web_links_elsewhere_are_tracked() {
        for (href, want) in [
            (
                "https://shop.example/a?b=1&c=2",
                Some("https://shop.example/a?b=1&c=2"),
            ),
            ("  HTTP://Shop.example/X  ", Some("HTTP://Shop.example/X")),
            (
                "https://shop.example/a b",
                Some("https://shop.example/a%20b"),
            ),
            (
                "https://shop.example/ü",
                Some("https://shop.example/%C3%BC"),
            ),
            ("mailto:x@example.com", None),
            ("#top", None),
            ("/relative", None),
            ("javascript:alert(1)", None),
            ("ftp://files.example/", None),
            ("http://api.example/api/v1/public/unsubscribe?token=x", None),
            ("https://", None),
        ] {
            assert_eq!(trackable(href, OWN).as_deref(), want, "{href}");
        }
    }

    #[test]
    fn tracked_html_wraps_links_and_signs_each_exact_url() {
        let links = LinkSigner::new(
            b"a secret of at least thirty-two bytes!!",
            "http://api.example",
        );
        let d = Uuid::now_v7();
        let html = "<p><a href=\"https://shop.example/?a=1&amp;b=2\">Shop</a> \
                    <a href='mailto:x@example.com'>Mail</a> \
                    <a href=\"http://api.example/api/v1/public/unsubscribe?token=t\">Unsubscribe</a></p>";
        let out = track_html(&links, d, html);
        let click = html::escape_attribute(&links.click_url(d, "https://shop.example/?a=1&b=2"));
        assert!(
            out.contains(&format!("<a href=\"{click}\">Shop</a>")),
            "{out}"
        );
        assert!(out.contains("<a href='mailto:x@example.com'>Mail</a>"));
        assert!(out.contains(
            "<a href=\"http://api.example/api/v1/public/unsubscribe?token=t\">Unsubscribe</a>"
        ));
        let pixel = links.url(Purpose::Open, d);
        assert!(out.ends_with(&format!("<img src=\"{pixel}\" width=\"1\" height=\"1\" alt=\"\" border=\"0\" style=\"display:block;width:1px;height:1px;border:0;\">")));
    }
}
