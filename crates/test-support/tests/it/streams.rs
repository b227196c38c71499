//! Every event the fake streams validates against the provider's official stream schema, and a
//! planned cut or stall stops the events where the plan says.

use serde_json::{json, Value};
use test_support::{event_data, ProviderKind, ProviderSchemas, StreamPlan};

fn answer() -> Value {
    json!({"questions": [
        {"q": "2+2? 🧮", "answer": 4},
        {"q": "3+3?", "answer": 6},
        {"q": "4+4?", "answer": 8}
    ]})
}

#[test]
fn streamed_events_fit_the_official_stream_schemas() {
    for kind in ProviderKind::ALL {
        let schemas = ProviderSchemas::get(kind).unwrap();
        let events = event_data(kind, "some-model", &StreamPlan::new(answer()));
        assert!(events.len() > 5, "{kind}: {} events", events.len());
        // The live API's `ping` is not in the SDK's event union (the specs' README says so).
        let checked = events.iter().filter(|e| e["type"] != "ping");
        for (i, event) in checked.enumerate() {
            let violations = schemas.check_stream_event(event);
            assert!(
                violations.is_empty(),
                "{kind} event {i} {event}: {violations:#?}"
            );
        }
    }
}

#[test]
fn a_cut_stops_the_events_inside_the_item_and_sends_no_end() {
    for kind in ProviderKind::ALL {
        let whole = event_data(kind, "m", &StreamPlan::new(answer()));
        let cut = event_data(kind, "m", &StreamPlan::new(answer()).cut_in_item(1));
        assert!(cut.len() < whole.len(), "{kind}");
        let text = cut.iter().map(Value::to_string).collect::<String>();
        assert!(
            !text.contains("message_stop") && !text.contains("STOP"),
            "{kind}"
        );
        assert!(!text.contains(r#""finish_reason":"stop""#), "{kind}");
    }
}
