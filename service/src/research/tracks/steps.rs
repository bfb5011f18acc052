//! The steps of a track: their shapes and their check against the
//! client's touchpoint library.
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::error::FieldError;

/// Who may sway the decision at a step.
pub const AGENT_KINDS: [&str; 8] = [
    "family",
    "friends",
    "bloggers",
    "sales_manager",
    "reviews",
    "experts",
    "colleagues",
    "other",
];

pub const MAX_STEPS: usize = 50;
pub const MAX_PER_STEP: usize = 20;

fn agent_kind() -> utoipa::openapi::Object {
    crate::infra::docs::one_of(&AGENT_KINDS)
}

/// The option of a `barrier` question a barrier stands for.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject,
)]
#[serde(deny_unknown_fields)]
pub struct TrackBarrierRef {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,63}$")]
    pub question_key: String,
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub value: String,
}

/// Who sways the customer's decision at a step, and how strongly.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject,
)]
#[serde(deny_unknown_fields)]
pub struct TrackAgent {
    /// family, friends, bloggers, sales_manager, reviews, experts,
    /// colleagues or other.
    #[schema(schema_with = agent_kind)]
    pub kind: String,
    /// Free words: "the wife", "a fitness blogger".
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_200_or_null)]
    pub label: Option<String>,
    /// 1 (barely) to 5 (decides).
    #[schema(minimum = 1, maximum = 5)]
    pub strength: i32,
}

/// A sales barrier at a step.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject,
)]
#[serde(deny_unknown_fields)]
pub struct TrackBarrier {
    #[schema(schema_with = crate::infra::docs::text_300)]
    pub label: String,
    #[serde(default)]
    pub barrier_ref: Option<TrackBarrierRef>,
}

/// One step of the journey.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject,
)]
#[serde(deny_unknown_fields)]
pub struct TrackStep {
    /// A stage of the client's touchpoint library.
    pub stage_id: Uuid,
    /// A touchpoint of that stage, if the step has one.
    #[serde(default)]
    pub touchpoint_id: Option<Uuid>,
    /// The customer's task, in their words.
    #[schema(schema_with = crate::infra::docs::text_500)]
    pub task: String,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub agents: Vec<TrackAgent>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub barriers: Vec<TrackBarrier>,
}

/// The stages and touchpoints of a client's library: stage → its touchpoints.
pub(super) type Library = HashMap<Uuid, HashSet<Uuid>>;

/// Checks the steps against the client's library; errors name
/// `steps[i].field` as sent.
pub(super) fn check_steps(steps: &[TrackStep], library: Option<&Library>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if steps.len() > MAX_STEPS {
        errs.push(FieldError::new(
            "steps",
            format!("at most {MAX_STEPS} steps"),
        ));
        return errs;
    }
    for (i, s) in steps.iter().enumerate() {
        let at = |f: &str| format!("steps[{i}].{f}");
        match library {
            None => errs.push(FieldError::new(
                at("stage_id"),
                "the client has no touchpoint library; set touchpoint_library_id",
            )),
            Some(lib) => match lib.get(&s.stage_id) {
                None => errs.push(FieldError::new(
                    at("stage_id"),
                    "no such stage in the client's touchpoint library",
                )),
                Some(tps) => {
                    if let Some(tp) = s.touchpoint_id
                        && !tps.contains(&tp)
                    {
                        errs.push(FieldError::new(
                            at("touchpoint_id"),
                            "no such touchpoint in the step's stage of the client's library",
                        ));
                    }
                }
            },
        }
        if !crate::domain::text::fits(&s.task, 500) {
            errs.push(FieldError::new(at("task"), "must be 1 to 500 characters"));
        }
        if s.agents.len() > MAX_PER_STEP {
            errs.push(FieldError::new(at("agents"), "at most 20 agents"));
        }
        for (j, a) in s.agents.iter().enumerate().take(MAX_PER_STEP) {
            let at = |f: &str| format!("steps[{i}].agents[{j}].{f}");
            if !AGENT_KINDS.contains(&a.kind.as_str()) {
                errs.push(FieldError::new(
                    at("kind"),
                    format!("must be one of {}", AGENT_KINDS.join(", ")),
                ));
            }
            if a.label
                .as_deref()
                .is_some_and(|l| !crate::domain::text::fits(l, 200))
            {
                errs.push(FieldError::new(at("label"), "must be 1 to 200 characters"));
            }
            if !(1..=5).contains(&a.strength) {
                errs.push(FieldError::new(at("strength"), "must be from 1 to 5"));
            }
        }
        if s.barriers.len() > MAX_PER_STEP {
            errs.push(FieldError::new(at("barriers"), "at most 20 barriers"));
        }
        for (j, b) in s.barriers.iter().enumerate().take(MAX_PER_STEP) {
            let at = |f: &str| format!("steps[{i}].barriers[{j}].{f}");
            if !crate::domain::text::fits(&b.label, 300) {
                errs.push(FieldError::new(at("label"), "must be 1 to 300 characters"));
            }
            if let Some(r) = &b.barrier_ref {
                if !crate::domain::questions::valid_key(&r.question_key) {
                    errs.push(FieldError::new(
                        at("barrier_ref.question_key"),
                        "must be a question key: a-z, 0-9 and _, starting with a letter, at most 64",
                    ));
                }
                if !crate::domain::text::fits(&r.value, 200) {
                    errs.push(FieldError::new(
                        at("barrier_ref.value"),
                        "must be 1 to 200 characters",
                    ));
                }
            }
        }
    }
    errs.truncate(100);
    errs
}

/// Steps as stored: texts trimmed.
pub(super) fn tidy(steps: Vec<TrackStep>) -> Vec<TrackStep> {
    steps
        .into_iter()
        .map(|mut s| {
            s.task = s.task.trim().to_owned();
            for a in &mut s.agents {
                a.label = a.label.as_ref().map(|l| l.trim().to_owned());
            }
            for b in &mut s.barriers {
                b.label = b.label.trim().to_owned();
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(stage: Uuid, tp: Option<Uuid>, strength: i32) -> TrackStep {
        TrackStep {
            stage_id: stage,
            touchpoint_id: tp,
            task: "Find a flat near the parents".into(),
            agents: vec![TrackAgent {
                kind: "family".into(),
                label: None,
                strength,
            }],
            barriers: vec![],
        }
    }

    fn fields(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn steps_must_name_the_clients_own_stages_and_touchpoints() {
        let (stage, other_stage, tp) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let lib: Library = [(stage, HashSet::from([tp])), (other_stage, HashSet::new())].into();
        assert!(check_steps(&[step(stage, Some(tp), 3)], Some(&lib)).is_empty());
        assert_eq!(
            fields(&check_steps(
                &[
                    step(Uuid::now_v7(), None, 3),
                    step(other_stage, Some(tp), 3)
                ],
                Some(&lib)
            )),
            ["steps[0].stage_id", "steps[1].touchpoint_id"]
        );
        assert_eq!(
            fields(&check_steps(&[step(stage, None, 3)], None)),
            ["steps[0].stage_id"]
        );
    }

    #[test]
    fn agent_strength_is_one_to_five() {
        let stage = Uuid::now_v7();
        let lib: Library = [(stage, HashSet::new())].into();
        for (strength, ok) in [(0, false), (1, true), (5, true), (6, false)] {
            let errs = check_steps(&[step(stage, None, strength)], Some(&lib));
            assert_eq!(errs.is_empty(), ok, "strength {strength}");
            if !ok {
                assert_eq!(fields(&errs), ["steps[0].agents[0].strength"]);
            }
        }
    }
}
