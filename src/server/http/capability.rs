//! The capability statement (`metadata`, open to anyone) and `$whoami`.

use serde_json::{Value, json};

use super::super::access::Caller;
use super::super::lastn;
use super::super::outcome::FhirError;
use super::super::params;
use super::super::search;
use super::super::store;
use super::route::OPERATIONS;

/// The signed-in user, as `Parameters`.
pub fn whoami(caller: &Caller) -> Result<Value, FhirError> {
    let Caller::User(user) = caller else {
        return Err(FhirError::not_found(
            "this server has no users; access is open",
        ));
    };
    let mut parameter = vec![
        json!({"name": "user", "valueString": user.name}),
        json!({"name": "login", "valueString": user.login}),
        json!({"name": "role", "valueCode": user.role.code()}),
    ];
    if let Some(p) = &user.practitioner {
        parameter.push(json!({"name": "practitioner", "valueReference": {"reference": p, "display": user.name}}));
    }
    Ok(json!({"resourceType": "Parameters", "parameter": parameter}))
}

pub fn statement(base: &str) -> Value {
    let resources: Vec<Value> = params::CORE_TYPES
        .iter()
        .chain(params::OTHER_TYPES.iter())
        .map(|(ty, ps)| {
            let mut search_params: Vec<Value> = vec![
                json!({"name": "_id", "type": "token"}),
                json!({"name": "_lastUpdated", "type": "date"}),
            ];
            search_params.extend(ps.iter().map(|p| {
                let t = match p.kind {
                    params::Kind::String => "string",
                    params::Kind::Token => "token",
                    params::Kind::Date => "date",
                    params::Kind::Reference => "reference",
                };
                json!({"name": p.name, "type": t})
            }));
            let includes: Vec<String> = ps
                .iter()
                .filter(|p| p.kind == params::Kind::Reference)
                .map(|p| format!("{ty}:{}", p.name))
                .collect();
            let interactions: Vec<Value> = [
                "read",
                "vread",
                "history-instance",
                "search-type",
                "create",
                "update",
            ]
            .iter()
            .map(|c| json!({"code": c}))
            .collect();
            let operations: Vec<Value> = OPERATIONS
                .iter()
                .filter(|(t, _, _)| t == ty)
                .map(|(_, name, definition)| json!({"name": name, "definition": definition}))
                .collect();
            let mut resource = json!({
                "type": ty,
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "interaction": interactions,
                "searchInclude": includes,
                "searchParam": search_params,
            });
            if !operations.is_empty() {
                resource["operation"] = Value::Array(operations);
            }
            resource
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": store::instant(store::now_ms()),
        "kind": "instance",
        "software": {"name": "chartty portal", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "chartty portal server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/json"],
        "rest": [{
            "mode": "server",
            "documentation": format!(
                "Paging by opaque cursor in Bundle.link next; _count defaults to {} (at most {}); \
                 unknown search parameters are ignored and reported unless Prefer: handling=strict. \
                 Observation/$lastn: the newest max (default {}, at most {}) results of each \
                 test of one patient (patient= required), after the other search parameters \
                 are applied. Extra: GET $whoami returns the signed-in user. Nothing is deleted \
                 (set status entered-in-error); signed notes are amended and final results \
                 corrected, never rewritten; the server names the author, signer, sender and \
                 requester of what a user writes. The audit trail is read as AuditEvent \
                 (patient, agent, user, entity, action, subtype, outcome, date).",
                search::DEFAULT_COUNT, search::MAX_COUNT, lastn::DEFAULT_MAX, lastn::MAX_MAX
            ),
            "security": {"service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth"}]}],
                          "description": "Bearer tokens when the server has users; open otherwise."},
            "resource": resources,
            "interaction": [{"code": "batch"}, {"code": "transaction"}],
            "searchParam": [
                {"name": "_count", "type": "number"}, {"name": "_sort", "type": "string"},
                {"name": "_elements", "type": "string"}, {"name": "_summary", "type": "token"},
                {"name": "_include", "type": "string"}, {"name": "_total", "type": "token"}
            ],
            "operation": [{"name": "whoami", "definition": format!("{base}/$whoami")}]
        }]
    })
}
