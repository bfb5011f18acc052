//! Channel figures (analytics.md §7): CPM, CTR, CPC, cost per contact and
//! CPA over a range, per channel, per funnel type and in total; the same per
//! ISO week with the last full week's change; the funnel report.
use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::FunnelType;

/// One client's figures for one day, channel and funnel type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelDay {
    pub day: NaiveDate,
    pub channel: String,
    pub funnel: FunnelType,
    pub spend: f64,
    pub impressions: u64,
    pub clicks: u64,
    pub contacts: u64,
    pub leads: u64,
    pub mentions: u64,
    pub brand_searches: u64,
}

/// Sums of a set of [`ChannelDay`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelTotals {
    pub spend: f64,
    pub impressions: u64,
    pub clicks: u64,
    pub contacts: u64,
    pub leads: u64,
    pub mentions: u64,
    pub brand_searches: u64,
}

impl ChannelTotals {
    pub fn add(&mut self, d: &ChannelDay) {
        self.spend += d.spend;
        self.impressions += d.impressions;
        self.clicks += d.clicks;
        self.contacts += d.contacts;
        self.leads += d.leads;
        self.mentions += d.mentions;
        self.brand_searches += d.brand_searches;
    }

    pub fn figures(&self) -> ChannelFigures {
        let per = |num: f64, den: u64| (den > 0).then(|| num / den as f64);
        ChannelFigures {
            spend: self.spend,
            impressions: self.impressions,
            clicks: self.clicks,
            contacts: self.contacts,
            leads: self.leads,
            mentions: self.mentions,
            brand_searches: self.brand_searches,
            cpm: per(self.spend * 1000.0, self.impressions),
            ctr: per(self.clicks as f64, self.impressions),
            cpc: per(self.spend, self.clicks),
            cost_per_contact: per(self.spend, self.contacts),
            cpa: per(self.spend, self.leads),
        }
    }
}

/// Sums and the ratios of §7, each `None` when its denominator is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct ChannelFigures {
    pub spend: f64,
    pub impressions: u64,
    pub clicks: u64,
    pub contacts: u64,
    pub leads: u64,
    pub mentions: u64,
    pub brand_searches: u64,
    /// spend / impressions · 1000.
    pub cpm: Option<f64>,
    /// clicks / impressions.
    pub ctr: Option<f64>,
    /// spend / clicks.
    pub cpc: Option<f64>,
    /// spend / contacts.
    pub cost_per_contact: Option<f64>,
    /// spend / leads.
    pub cpa: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct ChannelGroup {
    pub channel: String,
    pub figures: ChannelFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct FunnelGroup {
    pub funnel: FunnelType,
    pub figures: ChannelFigures,
}

/// One ISO week (Monday to Sunday) of figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct WeekFigures {
    /// The week's Monday.
    pub week_start: NaiveDate,
    pub iso_year: i32,
    pub iso_week: u32,
    pub figures: ChannelFigures,
}

/// Relative change (`last / baseline − 1`) of each figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct ChannelFigureChange {
    pub spend: Option<f64>,
    pub impressions: Option<f64>,
    pub clicks: Option<f64>,
    pub contacts: Option<f64>,
    pub leads: Option<f64>,
    pub mentions: Option<f64>,
    pub brand_searches: Option<f64>,
    pub cpm: Option<f64>,
    pub ctr: Option<f64>,
    pub cpc: Option<f64>,
    pub cost_per_contact: Option<f64>,
    pub cpa: Option<f64>,
}

/// Means of 4 weeks; its ratios are the ratios of the means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct ChannelBaseline {
    pub spend: f64,
    pub impressions: f64,
    pub clicks: f64,
    pub contacts: f64,
    pub leads: f64,
    pub mentions: f64,
    pub brand_searches: f64,
    pub cpm: Option<f64>,
    pub ctr: Option<f64>,
    pub cpc: Option<f64>,
    pub cost_per_contact: Option<f64>,
    pub cpa: Option<f64>,
}

/// The last full week against the mean of the 4 full weeks before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct ChannelTrend {
    /// Monday of the last full week in the range, if there is one.
    pub week_start: Option<NaiveDate>,
    /// Mean of the 4 weeks before it.
    pub baseline: Option<ChannelBaseline>,
    pub change: ChannelFigureChange,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct ChannelReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub total: ChannelFigures,
    /// Ordered by channel name.
    pub by_channel: Vec<ChannelGroup>,
    /// In [`FunnelType::ALL`] order, only the types that have rows.
    pub by_funnel: Vec<FunnelGroup>,
    /// Every ISO week that touches the range, empty weeks included.
    pub weeks: Vec<WeekFigures>,
    pub trend: ChannelTrend,
}

fn monday(d: NaiveDate) -> NaiveDate {
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

/// Figures of the rows dated within `[from, to]` (others are ignored).
pub fn channel_report(rows: &[ChannelDay], from: NaiveDate, to: NaiveDate) -> ChannelReport {
    let mut total = ChannelTotals::default();
    let mut by_channel: BTreeMap<&str, ChannelTotals> = BTreeMap::new();
    let mut by_funnel: BTreeMap<FunnelType, ChannelTotals> = BTreeMap::new();
    let mut by_week: BTreeMap<NaiveDate, ChannelTotals> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.day >= from && r.day <= to) {
        total.add(r);
        by_channel.entry(&r.channel).or_default().add(r);
        by_funnel.entry(r.funnel).or_default().add(r);
        by_week.entry(monday(r.day)).or_default().add(r);
    }
    let mut weeks = Vec::new();
    if from <= to {
        let mut w = monday(from);
        while w <= to {
            let iso = w.iso_week();
            weeks.push(WeekFigures {
                week_start: w,
                iso_year: iso.year(),
                iso_week: iso.week(),
                figures: by_week.get(&w).copied().unwrap_or_default().figures(),
            });
            w += Duration::days(7);
        }
    }
    let trend = trend(&weeks, from, to);
    ChannelReport {
        from,
        to,
        total: total.figures(),
        by_channel: by_channel
            .into_iter()
            .map(|(channel, t)| ChannelGroup {
                channel: channel.to_string(),
                figures: t.figures(),
            })
            .collect(),
        by_funnel: by_funnel
            .into_iter()
            .map(|(funnel, t)| FunnelGroup {
                funnel,
                figures: t.figures(),
            })
            .collect(),
        weeks,
        trend,
    }
}

/// Full weeks are those wholly inside `[from, to]`.
fn trend(weeks: &[WeekFigures], from: NaiveDate, to: NaiveDate) -> ChannelTrend {
    let full: Vec<&WeekFigures> = weeks
        .iter()
        .filter(|w| w.week_start >= from && w.week_start + Duration::days(6) <= to)
        .collect();
    let Some((last, before)) = full.split_last() else {
        return ChannelTrend {
            week_start: None,
            baseline: None,
            change: ChannelFigureChange::default(),
        };
    };
    if before.len() < 4 {
        return ChannelTrend {
            week_start: Some(last.week_start),
            baseline: None,
            change: ChannelFigureChange::default(),
        };
    }
    let base = &before[before.len() - 4..];
    let mean =
        |f: fn(&ChannelFigures) -> f64| base.iter().map(|w| f(&w.figures)).sum::<f64>() / 4.0;
    let ratio = |num: f64, den: f64| (den > 0.0).then(|| num / den);
    let spend = mean(|t| t.spend);
    let impressions = mean(|t| t.impressions as f64);
    let clicks = mean(|t| t.clicks as f64);
    let contacts = mean(|t| t.contacts as f64);
    let leads = mean(|t| t.leads as f64);
    let b = ChannelBaseline {
        spend,
        impressions,
        clicks,
        contacts,
        leads,
        mentions: mean(|t| t.mentions as f64),
        brand_searches: mean(|t| t.brand_searches as f64),
        cpm: ratio(spend * 1000.0, impressions),
        ctr: ratio(clicks, impressions),
        cpc: ratio(spend, clicks),
        cost_per_contact: ratio(spend, contacts),
        cpa: ratio(spend, leads),
    };
    let rel = |last: f64, base: f64| (base != 0.0).then(|| last / base - 1.0);
    let rel_opt = |last: Option<f64>, base: Option<f64>| match (last, base) {
        (Some(l), Some(b)) => rel(l, b),
        _ => None,
    };
    let t = &last.figures;
    let f = &last.figures;
    let change = ChannelFigureChange {
        spend: rel(t.spend, b.spend),
        impressions: rel(t.impressions as f64, b.impressions),
        clicks: rel(t.clicks as f64, b.clicks),
        contacts: rel(t.contacts as f64, b.contacts),
        leads: rel(t.leads as f64, b.leads),
        mentions: rel(t.mentions as f64, b.mentions),
        brand_searches: rel(t.brand_searches as f64, b.brand_searches),
        cpm: rel_opt(f.cpm, b.cpm),
        ctr: rel_opt(f.ctr, b.ctr),
        cpc: rel_opt(f.cpc, b.cpc),
        cost_per_contact: rel_opt(f.cost_per_contact, b.cost_per_contact),
        cpa: rel_opt(f.cpa, b.cpa),
    };
    ChannelTrend {
        week_start: Some(last.week_start),
        baseline: Some(b),
        change,
    }
}

/// A funnel type's contact counts over the report's range, as the caller
/// counted them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FunnelCounts {
    pub funnel: FunnelType,
    pub contacts: u64,
    /// Tier hot or warm.
    pub qualified: u64,
    /// Enrolled in at least one chain.
    pub enrolled: u64,
    pub converted: u64,
}

/// contacts → qualified → enrolled → converted of one funnel type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct FunnelReportRow {
    pub funnel: FunnelType,
    pub spend: f64,
    pub contacts: u64,
    pub qualified: u64,
    pub enrolled: u64,
    pub converted: u64,
    /// qualified / contacts.
    pub qualified_rate: Option<f64>,
    /// enrolled / qualified.
    pub enrolled_rate: Option<f64>,
    /// converted / enrolled.
    pub converted_rate: Option<f64>,
    pub spend_per_contact: Option<f64>,
    pub spend_per_qualified: Option<f64>,
    pub spend_per_conversion: Option<f64>,
}

/// One row per funnel type (all three, in order), spend from the rows dated
/// within `[from, to]`.
pub fn funnel_report(
    rows: &[ChannelDay],
    from: NaiveDate,
    to: NaiveDate,
    counts: &[FunnelCounts],
) -> Vec<FunnelReportRow> {
    FunnelType::ALL
        .into_iter()
        .map(|funnel| {
            // `+ 0.0`: an empty f64 sum is -0.0, which would print as such.
            let spend: f64 = rows
                .iter()
                .filter(|r| r.funnel == funnel && r.day >= from && r.day <= to)
                .map(|r| r.spend)
                .sum::<f64>()
                + 0.0;
            let c = counts
                .iter()
                .find(|c| c.funnel == funnel)
                .copied()
                .unwrap_or(FunnelCounts {
                    funnel,
                    contacts: 0,
                    qualified: 0,
                    enrolled: 0,
                    converted: 0,
                });
            let per = |num: f64, den: u64| (den > 0).then(|| num / den as f64);
            FunnelReportRow {
                funnel,
                spend,
                contacts: c.contacts,
                qualified: c.qualified,
                enrolled: c.enrolled,
                converted: c.converted,
                qualified_rate: per(c.qualified as f64, c.contacts),
                enrolled_rate: per(c.enrolled as f64, c.qualified),
                converted_rate: per(c.converted as f64, c.enrolled),
                spend_per_contact: per(spend, c.contacts),
                spend_per_qualified: per(spend, c.qualified),
                spend_per_conversion: per(spend, c.converted),
            }
        })
        .collect()
}
