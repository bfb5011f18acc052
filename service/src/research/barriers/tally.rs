//! From the folded answers of the client's questionnaires to the tallies
//! of `analytics::barriers`: one barrier per (question key, option) over
//! all questionnaires of a group, open answers per (question key, group).
use std::collections::{BTreeMap, HashMap};

use analytics::barriers::{BarrierInput, OpenParts, Tally};
use analytics::panel::{Dataset, Kind, PanelState, QState};
use uuid::Uuid;

/// Who answered a questionnaire: `non_buyer` questionnaires hold refusals;
/// `customer_panel` and `segment_survey` ones buyers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    NonBuyers,
    Buyers,
}

impl Group {
    /// The group of a questionnaire kind; None for kinds without barriers.
    pub fn of_kind(kind: &str) -> Option<Self> {
        match kind {
            "non_buyer" => Some(Group::NonBuyers),
            "customer_panel" | "segment_survey" => Some(Group::Buyers),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Group::NonBuyers => "non_buyers",
            Group::Buyers => "buyers",
        }
    }
}

/// A barrier question as its questionnaire states it.
#[derive(Debug, Clone)]
pub struct BarrierQuestion {
    pub key: String,
    pub label: String,
    pub stage_id: Option<Uuid>,
}

/// What a barrier question is across questionnaires: its label and stage
/// as the first questionnaire naming them says (non-buyer ones first).
#[derive(Debug, Clone, Default)]
pub struct QuestionInfo {
    pub label: String,
    pub stage_id: Option<Uuid>,
}

/// Tallies gathered over the client's questionnaires.
#[derive(Debug, Default)]
pub struct Gathered {
    /// (key, option) → (non-buyers, buyers).
    pub choices: BTreeMap<(String, String), (Option<Tally>, Option<Tally>)>,
    pub open: BTreeMap<(String, Group), OpenParts>,
    pub questions: HashMap<String, QuestionInfo>,
}

impl Gathered {
    /// Notes a questionnaire's barrier questions; call in order, non-buyer
    /// questionnaires first, so their labels and stages win.
    pub fn note_questions(&mut self, questions: &[BarrierQuestion]) {
        for q in questions {
            let info = self.questions.entry(q.key.clone()).or_default();
            if info.label.is_empty() {
                info.label = q.label.clone();
            }
            if info.stage_id.is_none() {
                info.stage_id = q.stage_id;
            }
        }
    }

    /// Adds the folded answers `state` of `ds`'s columns `columns` (barrier
    /// questions) for `group`.
    pub fn add(&mut self, group: Group, ds: &Dataset, state: &PanelState, columns: &[usize]) {
        for &qi in columns {
            let q = &ds.questions[qi];
            match (&q.kind, &state.questions[qi]) {
                (
                    Kind::Single { options } | Kind::Multi { options },
                    QState::Choice { answered, counts },
                ) => {
                    for (option, &count) in options.iter().zip(counts) {
                        let entry = self
                            .choices
                            .entry((q.key.clone(), option.clone()))
                            .or_default();
                        let slot = match group {
                            Group::NonBuyers => &mut entry.0,
                            Group::Buyers => &mut entry.1,
                        };
                        slot.get_or_insert_with(Tally::default).add(Tally {
                            count,
                            n: *answered,
                        });
                    }
                }
                (Kind::Text, _) => {
                    let (answered, latest) = state.latest_answers(ds, qi);
                    let parts = OpenParts {
                        answered,
                        latest,
                        counts: state.normalised_counts(ds, qi),
                    };
                    self.open
                        .entry((q.key.clone(), group))
                        .or_default()
                        .merge(parts);
                }
                _ => {}
            }
        }
    }

    /// The barrier tallies, keeping only questions `keep` accepts.
    pub fn inputs(&self, keep: impl Fn(&str) -> bool) -> Vec<BarrierInput> {
        self.choices
            .iter()
            .filter(|((key, _), _)| keep(key))
            .map(|((key, option), (nb, b))| BarrierInput {
                question: key.clone(),
                option: option.clone(),
                non_buyers: *nb,
                buyers: *b,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use analytics::panel::{Cell, PanelQuestion, Role};

    fn dataset(rows: &[Cell]) -> Dataset {
        let mut ds = Dataset::new(vec![PanelQuestion {
            key: "why_not".into(),
            kind: Kind::Multi {
                options: vec!["price".into(), "trust".into()],
            },
            role: Role::Other,
            factor: None,
        }]);
        for (i, c) in rows.iter().enumerate() {
            ds.push(i as i64, vec![c.clone()]);
        }
        ds
    }

    #[test]
    fn barriers_sum_over_questionnaires_of_a_group_and_blanks_do_not_count() {
        let mut g = Gathered::default();
        // price+trust, [] (answered, nothing chosen), blank
        let a = dataset(&[Cell::Multi(0b11), Cell::Multi(0), Cell::Blank]);
        g.add(Group::NonBuyers, &a, &a.fold_all(), &[0]);
        let b = dataset(&[Cell::Multi(0b01)]);
        g.add(Group::NonBuyers, &b, &b.fold_all(), &[0]);
        let inputs = g.inputs(|_| true);
        let price = &inputs[0];
        assert_eq!(price.option, "price");
        assert_eq!(price.non_buyers, Some(Tally { count: 2, n: 3 }));
        assert_eq!(price.buyers, None);
        assert_eq!(inputs[1].non_buyers, Some(Tally { count: 1, n: 3 }));
    }
}
