//! Cursor pagination over time-ordered (UUID v7) ids.
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult};

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

/// `?limit=&after=` as a client sends them.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[param(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub after: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: u64,
    pub after: Option<Uuid>,
}

impl PageParams {
    pub fn parse(&self) -> AppResult<PageRequest> {
        let limit = self.parse_limit()?;
        let after = match &self.after {
            None => None,
            Some(s) => Some(
                parse_hyphenated(s)
                    .ok_or_else(|| AppError::field("after", "is not a cursor from this API"))?,
            ),
        };
        Ok(PageRequest { limit, after })
    }

    /// The page size alone, for lists with a cursor of their own.
    pub fn parse_limit(&self) -> AppResult<u64> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AppError::field(
                "limit",
                format!("must be from 1 to {MAX_LIMIT}"),
            ));
        }
        Ok(limit)
    }
}

/// A UUID in its hyphenated form only, as ids are written (the document's
/// pattern); `Uuid::parse_str` also takes the simple, braced and URN forms.
pub fn parse_hyphenated(s: &str) -> Option<Uuid> {
    if s.len() == 36 {
        Uuid::try_parse(s).ok()
    } else {
        None
    }
}

/// One page of items and the cursor of the next one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl PageRequest {
    /// Runs `select` ordered by `id`, one page after the cursor.
    pub async fn fetch<E, M, C, V>(
        &self,
        select: Select<E>,
        id: impl ColumnTrait,
        db: &C,
        view: impl Fn(M) -> V,
    ) -> AppResult<Page<V>>
    where
        E: EntityTrait<Model = M>,
        M: FromQueryResult + Send + Sync,
        C: ConnectionTrait,
        V: HasId,
    {
        let mut q = select.order_by_asc(id);
        if let Some(after) = self.after {
            q = q.filter(id.gt(after));
        }
        let rows = q.limit(self.limit + 1).all(db).await?;
        Ok(self.finish(rows.into_iter().map(view).collect()))
    }

    /// One page cut from items already in memory, ordered by id.
    pub fn cut<V: HasId>(&self, items: impl Iterator<Item = V>) -> Page<V> {
        let after = self.after;
        self.finish(
            items
                .filter(|v| after.is_none_or(|a| v.id() > a))
                .take(self.limit as usize + 1)
                .collect(),
        )
    }

    /// `items`: up to one more than a page, the extra one telling that
    /// another page follows.
    fn finish<V: HasId>(&self, items: Vec<V>) -> Page<V> {
        Page::from_rows(self.limit, items, |v| v.id().to_string())
    }
}

impl<T> Page<T> {
    /// `items`: up to `limit + 1` rows, the extra one telling that another
    /// page follows; `cursor` names the last row kept.
    pub fn from_rows(limit: u64, mut items: Vec<T>, cursor: impl Fn(&T) -> String) -> Self {
        let more = items.len() as u64 > limit;
        items.truncate(limit as usize);
        let next_cursor = if more { items.last().map(cursor) } else { None };
        Page { items, next_cursor }
    }
}

/// Views that can give the cursor of their row.
pub trait HasId {
    fn id(&self) -> Uuid;
}

#[macro_export]
macro_rules! has_id {
    ($($t:ty),* $(,)?) => {
        $(impl $crate::infra::page::HasId for $t {
            fn id(&self) -> uuid::Uuid {
                self.id
            }
        })*
    };
}

has_id!(entity::membership::Model, entity::questionnaire::Model);
