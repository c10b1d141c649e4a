//! The FHIR REST API over HTTP, against a real server on a loopback port.

use std::collections::HashSet;

use chartty::roles::Role;
use chartty::server::demo::DemoStaff;
use chartty::server::{self, RunningServer, ServerConfig};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

struct Fixture {
    srv: RunningServer,
    base: String,
    c: Client,
    _dir: tempfile::TempDir,
}

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new()
}

async fn open_server() -> Fixture {
    server_with(Vec::new()).await
}

async fn server_with(staff: Vec<DemoStaff>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        db: dir.path().join("portal.db"),
        demo: None,
    };
    let srv = server::start_with_staff(config, listener, staff)
        .await
        .unwrap();
    Fixture {
        base: srv.base_url.clone(),
        srv,
        c: client(),
        _dir: dir,
    }
}

fn all_staff() -> Vec<DemoStaff> {
    Role::ALL
        .iter()
        .map(|r| DemoStaff {
            role: *r,
            name: format!("Dr {}", r.label()),
            practitioner_id: format!("pr-{}", r.code()),
        })
        .collect()
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    async fn post(
        &self,
        path: &str,
        body: &Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let r = self
            .c
            .post(self.url(path))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let (s, h) = (r.status(), r.headers().clone());
        (s, h, r.json().await.unwrap_or(Value::Null))
    }

    async fn put(
        &self,
        path: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .c
            .put(self.url(path))
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
        if let Some(m) = if_match {
            req = req.header("if-match", m);
        }
        let r = req.send().await.unwrap();
        let (s, h) = (r.status(), r.headers().clone());
        (s, h, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let r = self.c.get(self.url(path)).send().await.unwrap();
        let (s, h) = (r.status(), r.headers().clone());
        (s, h, r.json().await.unwrap_or(Value::Null))
    }

    async fn get_ok(&self, path: &str) -> Value {
        let (s, _, v) = self.get(path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        v
    }

    async fn create(&self, resource: Value) -> Value {
        let ty = resource["resourceType"].as_str().unwrap().to_string();
        let (s, _, v) = self.post(&ty, &resource).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    async fn ids(&self, path: &str) -> Vec<String> {
        matches(&self.get_ok(path).await)
    }
}

fn matches(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .map(str::to_string)
}

fn assert_outcome(v: &Value) {
    assert_eq!(v["resourceType"], "OperationOutcome", "{v}");
    assert!(v["issue"][0]["code"].is_string(), "{v}");
}

fn patient(family: &str, given: &str, birth: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
           "birthDate": birth, "gender": "female",
           "identifier": [{"system": "urn:chartty:mrn", "value": format!("MRN-{family}-{given}")}]})
}

#[tokio::test]
async fn create_read_vread_update_with_versions() {
    let f = open_server().await;
    let (s, h, created) = f
        .post("Patient", &patient("Ordóñez", "Bernardo", "1984-03-05"))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["meta"]["versionId"], "1");
    assert!(created["meta"]["lastUpdated"].is_string());
    assert_eq!(h["etag"], "W/\"1\"");
    assert!(
        h["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/Patient/{id}/_history/1"))
    );

    let (s, h, read) = f.get(&format!("Patient/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["etag"], "W/\"1\"");
    assert!(h["last-modified"].to_str().unwrap().ends_with("GMT"));
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json")
    );
    assert_eq!(read["name"][0]["family"], "Ordóñez");

    let mut changed = read.clone();
    changed["gender"] = json!("male");
    let (s, h, updated) = f
        .put(&format!("Patient/{id}"), &changed, Some("W/\"1\""))
        .await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!(h["etag"], "W/\"2\"");
    assert_eq!(updated["meta"]["versionId"], "2");

    // A stale version is refused and nothing is written.
    changed["gender"] = json!("other");
    let (s, _, v) = f
        .put(&format!("Patient/{id}"), &changed, Some("W/\"1\""))
        .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    assert_outcome(&v);
    assert_eq!(f.get_ok(&format!("Patient/{id}")).await["gender"], "male");

    let v1 = f.get_ok(&format!("Patient/{id}/_history/1")).await;
    assert_eq!(v1["gender"], "female");
    assert_eq!(v1["meta"]["versionId"], "1");
    let (s, _, v) = f.get(&format!("Patient/{id}/_history/9")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_outcome(&v);
    let hist = f.get_ok(&format!("Patient/{id}/_history")).await;
    assert_eq!(hist["total"], 2);

    // Update-as-create with a client id.
    let mut p = patient("Client", "Chosen", "1990");
    p["id"] = json!("chosen-1");
    let (s, _, _) = f.put("Patient/chosen-1", &p, None).await;
    assert_eq!(s, StatusCode::CREATED);

    // Nothing is deleted, not even with open access: the record stays.
    let r = f.c.delete(f.url("Patient/chosen-1")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_outcome(&r.json().await.unwrap());
    assert_eq!(f.get("Patient/chosen-1").await.0, StatusCode::OK);
    f.srv.stop().await;
}

#[tokio::test]
async fn errors_are_operation_outcomes_with_the_right_status() {
    let f = open_server().await;
    let malformed =
        f.c.post(f.url("Patient"))
            .header("content-type", "application/fhir+json")
            .body("{\"resourceType\": \"Patient\",")
            .send()
            .await
            .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_outcome(&malformed.json().await.unwrap());

    let (s, _, v) = f
        .post(
            "Patient",
            &json!({"resourceType": "Observation", "status": "final", "code": {}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_outcome(&v);

    let (s, _, v) = f
        .post(
            "Observation",
            &json!({"resourceType": "Observation", "status": "final"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_outcome(&v);

    let created = f.create(patient("Mismatch", "Ida", "1970")).await;
    let id = created["id"].as_str().unwrap();
    let mut other = created.clone();
    other["id"] = json!("someone-else");
    let (s, _, v) = f.put(&format!("Patient/{id}"), &other, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_outcome(&v);

    let (s, _, v) = f.get("Patient/never-existed").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_outcome(&v);
    let (s, _, v) = f.get("Spaceship?name=x").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_outcome(&v);
    let (s, _, v) = f.get("Spaceship/1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_outcome(&v);

    let r = f.c.delete(f.url("Patient")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_outcome(&r.json().await.unwrap());
    let r =
        f.c.patch(f.url(&format!("Patient/{id}")))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = f.c.get(f.url("")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);

    let (s, _, v) = f.get("Patient?birthdate=notadate").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_outcome(&v);
    // Nothing was written by any failing request.
    let all = f.get_ok("Patient?_summary=count").await;
    assert_eq!(all["total"], 1);
    f.srv.stop().await;
}

#[tokio::test]
async fn conditional_create_is_idempotent() {
    let f = open_server().await;
    let send = |body: Value, cond: &'static str| {
        let req =
            f.c.post(f.url("Patient"))
                .header("content-type", "application/fhir+json")
                .header("if-none-exist", cond)
                .body(body.to_string());
        async move {
            let r = req.send().await.unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap())
        }
    };
    let p = patient("Retry", "Rita", "1980");
    let (s1, a) = send(p.clone(), "identifier=urn:chartty:mrn|MRN-Retry-Rita").await;
    let (s2, b) = send(p.clone(), "identifier=urn:chartty:mrn|MRN-Retry-Rita").await;
    assert_eq!(s1, StatusCode::CREATED);
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(a["id"], b["id"]);
    f.create(patient("Twin", "One", "1980")).await;
    f.create(patient("Twin", "Two", "1980")).await;
    let (s, v) = send(p, "family=twin").await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    assert_outcome(&v);
    f.srv.stop().await;
}

#[tokio::test]
async fn patient_search_parameters() {
    let f = open_server().await;
    let agustin = f.create(patient("Fonseca", "Agustín", "1984-03-05")).await;
    let ordonez = f.create(patient("Ordóñez", "Bernardo", "1984-11-20")).await;
    let mut male = patient("Abbott", "Barney", "1999-01-01");
    male["gender"] = json!("male");
    let barney = f.create(male).await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();

    assert_eq!(f.ids("Patient?name=agus").await, vec![id(&agustin)]);
    assert_eq!(f.ids("Patient?name=AGUSTIN").await, vec![id(&agustin)]);
    assert_eq!(f.get_ok("Patient?name=agus").await["total"], 1);
    // A total for a result spanning pages is only computed when asked for.
    assert!(f.get_ok("Patient?_count=1").await["total"].is_null());
    assert_eq!(
        f.get_ok("Patient?_count=1&_total=accurate").await["total"],
        3
    );
    assert_eq!(f.ids("Patient?name=ordon").await, vec![id(&ordonez)]);
    assert_eq!(f.ids("Patient?name=Ordóñ").await, vec![id(&ordonez)]);
    assert_eq!(f.ids("Patient?family=fons").await, vec![id(&agustin)]);
    assert_eq!(f.ids("Patient?given=barn").await, vec![id(&barney)]);
    assert_eq!(f.ids("Patient?name=zzz").await, Vec::<String>::new());
    assert_eq!(f.ids("Patient?name=fons%20agu").await, vec![id(&agustin)]);
    assert_eq!(
        f.ids("Patient?name=fons%20bern").await,
        Vec::<String>::new()
    );
    assert_eq!(
        f.ids("Patient?name=agus,ordon").await,
        vec![id(&agustin), id(&ordonez)]
    );
    assert_eq!(f.ids("Patient?gender=male").await, vec![id(&barney)]);
    assert_eq!(
        f.ids("Patient?identifier=urn:chartty:mrn|MRN-Fonseca-Agustín")
            .await,
        vec![id(&agustin)]
    );
    assert_eq!(
        f.ids("Patient?identifier=MRN-Abbott-Barney").await,
        vec![id(&barney)]
    );
    assert_eq!(
        f.ids(&format!("Patient?_id={}", id(&ordonez))).await,
        vec![id(&ordonez)]
    );
    // Dates: partial, and with prefixes.
    assert_eq!(f.ids("Patient?birthdate=1984").await.len(), 2);
    assert_eq!(f.ids("Patient?birthdate=1984-03").await, vec![id(&agustin)]);
    assert_eq!(
        f.ids("Patient?birthdate=1984-03-05").await,
        vec![id(&agustin)]
    );
    assert_eq!(
        f.ids("Patient?birthdate=ge1984-06").await,
        vec![id(&ordonez), id(&barney)]
    );
    assert_eq!(
        f.ids("Patient?birthdate=lt1984-11-20").await,
        vec![id(&agustin)]
    );
    assert_eq!(f.ids("Patient?birthdate=gt1984").await, vec![id(&barney)]);
    assert_eq!(f.ids("Patient?birthdate=le1984-11-20").await.len(), 2);
    assert_eq!(
        f.ids("Patient?name=a&birthdate=1984").await,
        vec![id(&agustin)]
    );

    // Sorting.
    assert_eq!(
        f.ids("Patient?_sort=family").await,
        vec![id(&barney), id(&agustin), id(&ordonez)]
    );
    assert_eq!(
        f.ids("Patient?_sort=-birthdate").await,
        vec![id(&barney), id(&ordonez), id(&agustin)]
    );
    assert_eq!(
        f.ids("Patient?_sort=-_lastUpdated&_count=1").await,
        vec![id(&barney)]
    );

    // _elements, _summary=count, POST _search.
    let b = f.get_ok("Patient?name=agus&_elements=name").await;
    let res = &b["entry"][0]["resource"];
    assert!(res["name"].is_array() && res["birthDate"].is_null() && res["id"].is_string());
    assert_eq!(res["meta"]["tag"][0]["code"], "SUBSETTED");
    let b = f.get_ok("Patient?birthdate=1984&_summary=count").await;
    assert_eq!(b["total"], 2);
    assert!(b["entry"].is_null());
    let r =
        f.c.post(f.url("Patient/_search"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=ordo")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(matches(&r.json().await.unwrap()), vec![id(&ordonez)]);
    f.srv.stop().await;
}

/// Names are found the way they are typed on a plain keyboard: accents
/// dropped, and letters that are not a base letter plus an accent (ø, ł, ı,
/// ß, đ, æ) spelled out.
#[tokio::test]
async fn names_are_found_as_typed_on_a_plain_keyboard() {
    let f = open_server().await;
    let mut ids = Vec::new();
    for (family, given) in [
        ("Nguyễn", "Thị Hương"),
        ("Østergaard", "Søren"),
        ("Yılmaz", "Ayşe"),
        ("Wójcik", "Łukasz"),
        ("Łódź", "Ida"),
        ("Straße", "Jürgen"),
        ("Đặng", "Minh"),
        ("Kjær", "Ægir"),
        ("Ordóñez", "Agustín"),
    ] {
        let created = f.create(patient(family, given, "1970-01-01")).await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let [
        nguyen,
        soren,
        yilmaz,
        lukasz,
        lodz,
        strasse,
        dang,
        kjaer,
        ordonez,
    ] = &ids[..]
    else {
        unreachable!()
    };
    for (typed, want) in [
        ("nguyen", nguyen),
        ("Nguyễn", nguyen),
        ("huong", nguyen),
        ("soren", soren),
        ("ostergaard", soren),
        ("Øster", soren),
        ("yilmaz", yilmaz),
        ("ayse", yilmaz),
        ("lukasz", lukasz),
        ("wojcik", lukasz),
        ("lodz", lodz),
        ("strasse", strasse),
        ("Straße", strasse),
        ("strass", strasse),
        ("jurgen", strasse),
        ("dang", dang),
        ("kjaer", kjaer),
        ("aegir", kjaer),
        ("ordonez", ordonez),
        ("agustin", ordonez),
        ("AGUSTÍN", ordonez),
        ("soren ostergaard", soren),
    ] {
        let query: String = url::form_urlencoded::byte_serialize(typed.as_bytes()).collect();
        assert_eq!(
            &f.ids(&format!("Patient?name={query}")).await,
            std::slice::from_ref(want),
            "name={typed}"
        );
    }
    assert_eq!(
        f.ids("Patient?family:exact=strasse").await,
        vec![strasse.clone()]
    );
    assert_eq!(
        f.ids("Patient?name:contains=ergaa").await,
        vec![soren.clone()]
    );
    assert!(f.ids("Patient?name=lodzz").await.is_empty());
    f.srv.stop().await;
}

#[tokio::test]
async fn unknown_parameters_are_reported_or_refused_when_strict() {
    let f = open_server().await;
    f.create(patient("Lenient", "Lou", "1950")).await;
    let b = f.get_ok("Patient?name=len&shoe-size=12").await;
    assert_eq!(matches(&b).len(), 1);
    let outcome = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .expect("an outcome entry");
    assert!(
        outcome["resource"]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("shoe-size")
    );
    let r =
        f.c.get(f.url("Patient?name=len&shoe-size=12"))
            .header("prefer", "handling=strict")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_outcome(&r.json().await.unwrap());
    f.srv.stop().await;
}

#[tokio::test]
async fn paging_stays_correct_while_data_changes() {
    let f = open_server().await;
    let mut originals = HashSet::new();
    for i in 0..25 {
        let p = f
            .create(patient("Pager", &format!("P{i:02}"), "1960"))
            .await;
        originals.insert(p["id"].as_str().unwrap().to_string());
    }
    for sort in ["", "&_sort=given", "&_sort=-_id"] {
        let mut seen = Vec::new();
        let mut page = f
            .get_ok(&format!("Patient?family=pager&_count=10{sort}"))
            .await;
        let mut pages = 0;
        loop {
            pages += 1;
            seen.extend(matches(&page));
            // Changes between pages: a new match and an edit of a seen one.
            let extra = f
                .create(patient("Pager", &format!("New{pages}{sort}"), "1960"))
                .await;
            let _ = extra;
            let Some(next) = next_link(&page) else { break };
            assert!(next.starts_with(&f.base), "{next}");
            let r = f.c.get(&next).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            page = r.json().await.unwrap();
            assert!(pages < 20, "paging does not end");
        }
        let unique: HashSet<_> = seen.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "a page repeated an entry ({sort})"
        );
        assert!(
            originals.is_subset(&unique),
            "a page skipped an entry ({sort})"
        );
    }
    let (s, _, v) = f.get("Patient?family=pager&_cursor=garbage").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_outcome(&v);
    f.srv.stop().await;
}

/// A patient with a chart: allergies, conditions, meds, vitals, labs, notes, tasks.
async fn chart(f: &Fixture) -> String {
    let pid = f.create(patient("Chart", "Carla", "1975-05-05")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let subject = json!({"reference": format!("Patient/{pid}")});
    let vital = |code: &str, when: &str| {
        json!({"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": subject, "effectiveDateTime": when})
    };
    f.create(vital("8867-4", "2024-01-01T10:00:00Z")).await;
    f.create(vital("8867-4", "2024-03-01T10:00:00Z")).await;
    f.create(vital("8310-5", "2024-02-01T10:00:00Z")).await;
    let mut lab = vital("2345-7", "2024-02-15");
    lab["category"][0]["coding"][0]["code"] = json!("laboratory");
    f.create(lab).await;
    f.create(
        json!({"resourceType": "AllergyIntolerance", "patient": subject,
        "code": {"text": "penicillin"}}),
    )
    .await;
    f.create(json!({"resourceType": "Condition", "subject": subject,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}})).await;
    f.create(json!({"resourceType": "Condition", "subject": subject,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]}})).await;
    f.create(
        json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "subject": subject, "medicationCodeableConcept": {"text": "metformin"}}),
    )
    .await;
    f.create(json!({"resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]}, "subject": subject,
        "date": "2024-03-02T09:00:00Z", "content": [{"attachment": {"contentType": "text/plain", "data": "Tm90ZQ=="}}]})).await;
    f.create(json!({"resourceType": "Task", "status": "requested", "intent": "order", "priority": "urgent",
        "for": subject, "owner": {"reference": "Practitioner/pr-nurse"},
        "performerType": [{"coding": [{"system": "urn:chartty:role", "code": "nurse"}]}],
        "businessStatus": {"coding": [{"system": "urn:chartty:task-status", "code": "new"}]}})).await;
    f.create(json!({"resourceType": "Task", "status": "requested", "intent": "order", "priority": "routine",
        "for": subject,
        "performerType": [{"coding": [{"system": "urn:chartty:role", "code": "frontdesk"}]}]})).await;
    f.create(json!({"resourceType": "Communication", "status": "in-progress", "subject": subject}))
        .await;
    pid
}

#[tokio::test]
async fn clinical_search_parameters() {
    let f = open_server().await;
    let pid = chart(&f).await;
    let n = |path: String| {
        let f = &f;
        async move { f.ids(&path).await.len() }
    };
    assert_eq!(n(format!("Observation?patient=Patient/{pid}")).await, 4);
    assert_eq!(n(format!("Observation?patient={pid}")).await, 4);
    assert_eq!(n(format!("Observation?subject=Patient/{pid}")).await, 4);
    assert_eq!(
        n(format!("Observation?patient={pid}&category=vital-signs")).await,
        3
    );
    assert_eq!(
        n(format!("Observation?patient={pid}&category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory")).await,
        1
    );
    assert_eq!(
        n(format!(
            "Observation?patient={pid}&code=http://loinc.org|8867-4"
        ))
        .await,
        2
    );
    assert_eq!(
        n(format!("Observation?patient={pid}&code=8867-4,8310-5")).await,
        3
    );
    assert_eq!(
        n(format!("Observation?patient={pid}&date=ge2024-02")).await,
        3
    );
    assert_eq!(
        n(format!("Observation?patient={pid}&date=lt2024-02-01")).await,
        1
    );
    assert_eq!(
        n(format!("Observation?patient={pid}&date=2024-02")).await,
        2
    );
    let latest = f
        .get_ok(&format!(
            "Observation?patient={pid}&category=vital-signs&_sort=-date&_count=1"
        ))
        .await;
    assert_eq!(
        latest["entry"][0]["resource"]["effectiveDateTime"],
        "2024-03-01T10:00:00Z"
    );
    assert_eq!(
        n(format!("Condition?patient={pid}&clinical-status=active")).await,
        1
    );
    assert_eq!(
        n(format!("MedicationRequest?patient={pid}&status=active")).await,
        1
    );
    assert_eq!(n(format!("AllergyIntolerance?patient={pid}")).await, 1);
    assert_eq!(
        n(format!(
            "DocumentReference?patient={pid}&type=http://loinc.org|11506-3&status=current"
        ))
        .await,
        1
    );
    assert_eq!(
        n(format!("DocumentReference?patient={pid}&date=2024-03-02")).await,
        1
    );
    assert_eq!(n("Task?performer-type=nurse".to_string()).await, 1);
    assert_eq!(
        n("Task?performer-type=urn:chartty:role|frontdesk".to_string()).await,
        1
    );
    assert_eq!(n("Task?owner=Practitioner/pr-nurse".to_string()).await, 1);
    assert_eq!(n("Task?owner=pr-nurse".to_string()).await, 1);
    assert_eq!(n(format!("Task?patient={pid}&status=requested")).await, 2);
    assert_eq!(
        n(format!("Task?for=Patient/{pid}&priority=urgent")).await,
        1
    );
    assert_eq!(n("Task?business-status=new".to_string()).await, 1);
    assert_eq!(
        n(format!("Communication?patient={pid}&status=in-progress")).await,
        1
    );
    assert_eq!(n(format!("Encounter?patient={pid}")).await, 0);

    let with_patient = f
        .get_ok("Task?performer-type=nurse&_include=Task:patient")
        .await;
    let entries = with_patient["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["search"]["mode"], "include");
    assert_eq!(entries[1]["resource"]["id"], pid.as_str());
    f.srv.stop().await;
}

#[tokio::test]
async fn batch_opens_a_chart_in_one_round_trip() {
    let f = open_server().await;
    let pid = chart(&f).await;
    let searches = [
        format!("AllergyIntolerance?patient={pid}"),
        format!("Condition?patient={pid}&clinical-status=active"),
        format!("MedicationRequest?patient={pid}&status=active"),
        format!("Observation?patient={pid}&category=vital-signs&_sort=-date&_count=10"),
        format!("Observation?patient={pid}&category=laboratory&_sort=-date&_count=10"),
        format!("DocumentReference?patient={pid}&_sort=-date"),
        format!("Task?patient={pid}&status=requested,in-progress"),
    ];
    let bundle = json!({"resourceType": "Bundle", "type": "batch",
        "entry": searches.iter().map(|u| json!({"request": {"method": "GET", "url": u}})).collect::<Vec<_>>()});
    let (s, _, v) = f.post("", &bundle).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["type"], "batch-response");
    let counts: Vec<usize> = v["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["response"]["status"], "200 OK");
            matches(&e["resource"]).len()
        })
        .collect();
    assert_eq!(counts, vec![1, 1, 1, 3, 1, 1, 2]);

    // A failing entry in a batch does not fail the others.
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Patient/{pid}")}},
        {"request": {"method": "GET", "url": "Patient/nobody"}},
    ]});
    let (_, _, v) = f.post("", &bundle).await;
    assert_eq!(v["entry"][0]["response"]["status"], "200 OK");
    assert!(
        v["entry"][1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("404")
    );
    assert_outcome(&v["entry"][1]["response"]["outcome"]);
    f.srv.stop().await;
}

#[tokio::test]
async fn transaction_rewrites_references_and_rolls_back() {
    let f = open_server().await;
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
         "resource": patient("Trans", "Tina", "1991"),
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222",
         "resource": {"resourceType": "Condition",
                      "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"}},
         "request": {"method": "POST", "url": "Condition"}},
    ]});
    let (s, _, v) = f.post("", &tx).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["type"], "transaction-response");
    assert_eq!(v["entry"][0]["response"]["status"], "201 Created");
    let pid = v["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        v["entry"][1]["resource"]["subject"]["reference"],
        format!("Patient/{pid}").as_str()
    );
    assert_eq!(f.ids(&format!("Condition?patient={pid}")).await.len(), 1);

    // The second entry is invalid: nothing of the transaction is kept.
    let bad = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:33333333-3333-3333-3333-333333333333",
         "resource": patient("Rollback", "Rob", "1992"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final"},
         "request": {"method": "POST", "url": "Observation"}},
    ]});
    let (s, _, v) = f.post("", &bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_outcome(&v);
    assert!(f.ids("Patient?family=rollback").await.is_empty());

    let (s, _, v) = f
        .post("", &json!({"resourceType": "Bundle", "type": "searchset"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_outcome(&v);
    f.srv.stop().await;
}

/// A lab Observation of `patient` with a value given as JSON text (so its
/// decimals are kept as written).
fn lab(patient: &str, loinc: &str, when: &str, status: &str, value: &str, unit: &str) -> Value {
    let mut o = json!({"resourceType": "Observation", "status": status,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": format!("Patient/{patient}")}, "effectiveDateTime": when,
        "valueQuantity": {"unit": unit, "system": "http://unitsofmeasure.org", "code": unit}});
    o["valueQuantity"]["value"] = serde_json::from_str(value).unwrap();
    o
}

/// A patient with 250 finger-stick glucose readings (four a day), one
/// potassium of 5.0 a month before the last of them, and a newer potassium
/// that was cancelled. Returns the patient id.
async fn diabetic_with_a_long_history(f: &Fixture) -> String {
    let pid = f.create(patient("Glucose", "Gina", "1961-06-01")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
    let entries: Vec<Value> = (0..250)
        .map(|i| {
            let day = start + chrono::Duration::days(i / 4);
            let hour = [7, 11, 17, 21][i as usize % 4];
            let value = (100 + (i * 37) % 150).to_string();
            let when = format!("{day}T{hour:02}:00:00Z");
            json!({"resource": lab(&pid, "2345-7", &when, "final", &value, "mg/dL"),
                   "request": {"method": "POST", "url": "Observation"}})
        })
        .collect();
    let (s, _, v) = f
        .post(
            "",
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    f.create(lab(
        &pid,
        "2823-3",
        "2026-08-01T08:00:00Z",
        "final",
        "5.0",
        "mmol/L",
    ))
    .await;
    f.create(lab(
        &pid,
        "2823-3",
        "2026-08-20T08:00:00Z",
        "cancelled",
        "9.9",
        "mmol/L",
    ))
    .await;
    pid
}

fn codes_and_dates(bundle: &Value) -> Vec<(String, String)> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| {
            let r = &e["resource"];
            (
                r["code"]["coding"][0]["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                r["effectiveDateTime"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn lastn_gives_the_newest_results_of_every_test() {
    let f = open_server().await;
    let pid = diabetic_with_a_long_history(&f).await;
    let last_glucose = "2026-09-01T11:00:00Z";

    // The last 200 labs would be glucose alone; $lastn has every test.
    let b = f
        .get_ok(&format!(
            "Observation/$lastn?patient=Patient/{pid}&category=laboratory&max=1"
        ))
        .await;
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "searchset");
    assert_eq!(
        codes_and_dates(&b),
        vec![
            ("2345-7".to_string(), last_glucose.to_string()),
            ("2823-3".to_string(), "2026-08-20T08:00:00Z".to_string()),
        ],
        "{b}"
    );
    assert_eq!(b["total"], 2);

    // Ignoring status, the cancelled potassium is the newest; asking for
    // valid results gives the older one, its value as written.
    let valid = "status=final,amended,corrected,preliminary";
    let b = f
        .get_ok(&format!(
            "Observation/$lastn?patient={pid}&category=laboratory&{valid}"
        ))
        .await;
    assert_eq!(
        codes_and_dates(&b),
        vec![
            ("2345-7".to_string(), last_glucose.to_string()),
            ("2823-3".to_string(), "2026-08-01T08:00:00Z".to_string()),
        ],
        "{b}"
    );
    assert_eq!(
        b["entry"][1]["resource"]["valueQuantity"]["value"].to_string(),
        "5.0"
    );

    // max: the newest first within each test; the default is 1.
    let b = f
        .get_ok(&format!("Observation/$lastn?patient={pid}&max=3&{valid}"))
        .await;
    let got = codes_and_dates(&b);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        got[..3].iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
        [
            "2026-09-01T11:00:00Z",
            "2026-09-01T07:00:00Z",
            "2026-08-31T21:00:00Z"
        ]
    );
    assert_eq!(got[3].0, "2823-3");
    let b = f
        .get_ok(&format!("Observation/$lastn?patient={pid}&max=1000"))
        .await;
    assert_eq!(codes_and_dates(&b).len(), 100 + 2, "max is capped at 100");
    let b = f
        .get_ok(&format!(
            "Observation/$lastn?subject=Patient/{pid}&code=http://loinc.org|2823-3&max=5"
        ))
        .await;
    assert_eq!(codes_and_dates(&b).len(), 2);
    let b = f
        .get_ok(&format!(
            "Observation/$lastn?patient={pid}&category=vital-signs"
        ))
        .await;
    assert!(codes_and_dates(&b).is_empty());
    assert_eq!(b["total"], 0);
    let b = f
        .get_ok(&format!("Observation/$lastn?patient={pid}&_summary=count"))
        .await;
    assert_eq!((b["total"].as_u64(), b["entry"].is_null()), (Some(2), true));
    // Paging parameters do not apply and are reported.
    let b = f
        .get_ok(&format!(
            "Observation/$lastn?patient={pid}&_count=1&_sort=date"
        ))
        .await;
    assert_eq!(codes_and_dates(&b).len(), 2);
    let outcome = b["entry"].as_array().unwrap().last().unwrap();
    assert_eq!(outcome["search"]["mode"], "outcome");
    assert!(
        outcome["resource"]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("_count")
    );

    // Another patient's results are not mixed in.
    let other = diabetic_with_a_long_history(&f).await;
    let b = f.get_ok(&format!("Observation/$lastn?patient={pid}")).await;
    assert!(
        b["entry"].as_array().unwrap().iter().all(|e| {
            e["resource"]["subject"]["reference"] == format!("Patient/{pid}").as_str()
        })
    );
    let b = f
        .get_ok(&format!("Observation/$lastn?patient={pid},{other}"))
        .await;
    assert_eq!(codes_and_dates(&b).len(), 4);

    // Updates re-rank: the newest glucose corrected back in time is no
    // longer the newest; one entered in error is not a value.
    let newest = f
        .get_ok(&format!(
            "Observation?patient={pid}&code=2345-7&_sort=-date&_count=1"
        ))
        .await["entry"][0]["resource"]
        .clone();
    let mut moved = newest.clone();
    moved["effectiveDateTime"] = json!("2026-06-01T00:00:00Z");
    moved["status"] = json!("corrected");
    let (s, _, _) = f
        .put(
            &format!("Observation/{}", newest["id"].as_str().unwrap()),
            &moved,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let b = f
        .get_ok(&format!("Observation/$lastn?patient={pid}&code=2345-7"))
        .await;
    assert_eq!(codes_and_dates(&b)[0].1, "2026-09-01T07:00:00Z");
    let next = b["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut withdrawn = b["entry"][0]["resource"].clone();
    withdrawn["status"] = json!("entered-in-error");
    let (s, _, _) = f
        .put(&format!("Observation/{next}"), &withdrawn, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let b = f
        .get_ok(&format!(
            "Observation/$lastn?patient={pid}&code=2345-7&status=final,amended,corrected"
        ))
        .await;
    assert_eq!(codes_and_dates(&b)[0].1, "2026-08-31T21:00:00Z");

    // Errors.
    for (path, status) in [
        (
            "Observation/$lastn?category=laboratory",
            StatusCode::BAD_REQUEST,
        ),
        (
            &format!("Observation/$lastn?patient={pid}&max=0") as &str,
            StatusCode::BAD_REQUEST,
        ),
        (
            &format!("Observation/$lastn?patient={pid}&max=x"),
            StatusCode::BAD_REQUEST,
        ),
        (
            &format!("Observation/$lastn?subject={pid}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            &format!("Observation/$lastn?patient={pid}&date=someday"),
            StatusCode::BAD_REQUEST,
        ),
        (
            &format!("Observation/$nextn?patient={pid}"),
            StatusCode::NOT_FOUND,
        ),
        (
            &format!("Patient/$lastn?patient={pid}"),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (s, _, v) = f.get(path).await;
        assert_eq!(s, status, "{path}: {v}");
        assert_outcome(&v);
    }
    let r =
        f.c.post(f.url(&format!("Observation/$lastn?patient={pid}")))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r =
        f.c.get(f.url(&format!("Observation/$lastn?patient={pid}&shoe=1")))
            .header("prefer", "handling=strict")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Listed in the CapabilityStatement, on Observation.
    let cap = f.get_ok("metadata").await;
    let obs = cap["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    assert_eq!(obs["operation"][0]["name"], "lastn");
    assert_eq!(
        obs["operation"][0]["definition"],
        "http://hl7.org/fhir/OperationDefinition/Observation-lastn"
    );
    f.srv.stop().await;
}

/// `$lastn` is a search of results: in a batch, for each role, and in the
/// audit trail, it is treated exactly as `Observation?patient=…`.
#[tokio::test]
async fn lastn_is_checked_batched_and_audited_like_a_search() {
    let f = server_with(all_staff()).await;
    let token = |r: Role| f.srv.token_for(r).unwrap().to_string();
    let attending = token(Role::Attending);
    let (s, _, p) = {
        let r =
            f.c.post(f.url("Patient"))
                .bearer_auth(&attending)
                .header("content-type", "application/fhir+json")
                .body(patient("Batch", "Bea", "1950").to_string())
                .send()
                .await
                .unwrap();
        (r.status(), (), r.json::<Value>().await.unwrap())
    };
    assert_eq!(s, StatusCode::CREATED);
    let pid = p["id"].as_str().unwrap().to_string();
    for (when, status) in [
        ("2026-01-01T08:00:00Z", "final"),
        ("2026-02-01T08:00:00Z", "entered-in-error"),
    ] {
        let r =
            f.c.post(f.url("Observation"))
                .bearer_auth(&attending)
                .header("content-type", "application/fhir+json")
                .body(lab(&pid, "2823-3", when, status, "4.10", "mmol/L").to_string())
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let lastn = format!("Observation/$lastn?patient=Patient/{pid}&category=laboratory");
    let search = format!("Observation?patient=Patient/{pid}&category=laboratory");
    for role in Role::ALL {
        let a =
            f.c.get(f.url(&lastn))
                .bearer_auth(token(role))
                .send()
                .await
                .unwrap();
        let b =
            f.c.get(f.url(&search))
                .bearer_auth(token(role))
                .send()
                .await
                .unwrap();
        assert_eq!(a.status(), b.status(), "{role}");
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": format!("{lastn}&status=final,amended,corrected")}},
            {"request": {"method": "GET", "url": search}},
        ]});
        let v: Value =
            f.c.post(f.url(""))
                .bearer_auth(token(role))
                .header("content-type", "application/fhir+json")
                .body(bundle.to_string())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(v["type"], "batch-response");
        assert_eq!(
            v["entry"][0]["response"]["status"], v["entry"][1]["response"]["status"],
            "{role}: {v}"
        );
        let allowed = matches!(role, Role::Attending | Role::Resident | Role::Nurse);
        assert_eq!(a.status() == StatusCode::OK, allowed, "{role}");
        if allowed {
            let found = &v["entry"][0]["resource"];
            assert_eq!(found["type"], "searchset");
            assert_eq!(found["total"], 1, "{found}");
            assert_eq!(found["entry"][0]["resource"]["status"], "final");
            assert_eq!(
                found["entry"][0]["resource"]["valueQuantity"]["value"].to_string(),
                "4.10"
            );
        } else {
            assert!(
                v["entry"][0]["response"]["status"]
                    .as_str()
                    .unwrap()
                    .starts_with("403")
            );
            assert_outcome(&v["entry"][0]["response"]["outcome"]);
        }
    }

    let Fixture { srv, _dir: dir, .. } = f;
    let db = dir.path().join("portal.db");
    srv.stop().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(String, i64)> = conn
        .prepare(
            "SELECT role, status FROM audit WHERE action = 'operation' AND type = 'Observation'
             ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Each role ran it twice: directly and in the batch.
    assert_eq!(rows.len(), 2 * Role::ALL.len(), "{rows:?}");
    assert!(rows.contains(&("frontdesk".to_string(), 403)));
    assert!(rows.contains(&("nurse".to_string(), 200)));
    // And it names the patient whose results were read (and, where they
    // were shown, each result).
    let records: Vec<(String, String, i64)> = conn
        .prepare(
            "SELECT patients, entities, status FROM audit
             WHERE action = 'operation' AND type = 'Observation' ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(records.len(), rows.len());
    for (patients, entities, status) in &records {
        let patients: Vec<String> = serde_json::from_str(patients).unwrap();
        assert_eq!(patients, [format!("Patient/{pid}")]);
        let entities: Vec<String> = serde_json::from_str(entities).unwrap();
        assert_eq!(entities.is_empty(), *status != 200, "{entities:?}");
    }
    drop(dir);
}

#[tokio::test]
async fn gzip_and_h2c() {
    let f = open_server().await;
    for i in 0..30 {
        f.create(patient("Zipped", &format!("Z{i}"), "1980")).await;
    }
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let r = raw
        .get(f.url("Patient?family=zipped&_count=30"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let compressed = r.bytes().await.unwrap().len();
    let plain = raw
        .get(f.url("Patient?family=zipped&_count=30"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    assert!(compressed < plain / 2, "{compressed} vs {plain}");
    // The ordinary client decompresses transparently.
    assert_eq!(f.ids("Patient?family=zipped&_count=30").await.len(), 30);

    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2.get(f.url("Patient?family=zipped")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), StatusCode::OK);
    let r = raw.get(f.url("metadata")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    f.srv.stop().await;
}

#[tokio::test]
async fn capability_statement_lists_what_is_supported() {
    let f = open_server().await;
    let cap = f.get_ok("metadata").await;
    assert_eq!(cap["resourceType"], "CapabilityStatement");
    assert_eq!(cap["fhirVersion"], "4.0.1");
    let resources = cap["rest"][0]["resource"].as_array().unwrap();
    for ty in [
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "Encounter",
        "Condition",
        "AllergyIntolerance",
        "MedicationRequest",
        "Observation",
        "DiagnosticReport",
        "DocumentReference",
        "Task",
        "Communication",
        "AuditEvent",
    ] {
        let r = resources
            .iter()
            .find(|r| r["type"] == ty)
            .unwrap_or_else(|| panic!("{ty}"));
        assert!(!r["searchParam"].as_array().unwrap().is_empty());
    }
    let task = resources.iter().find(|r| r["type"] == "Task").unwrap();
    assert!(
        task["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "performer-type")
    );
    // $whoami has nobody to report on an open server.
    let (s, _, v) = f.get("$whoami").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_outcome(&v);
    f.srv.stop().await;
}

#[tokio::test]
async fn bearer_tokens_roles_and_whoami() {
    let f = server_with(all_staff()).await;
    assert_eq!(f.srv.users.len(), Role::ALL.len());
    let tokens: HashSet<_> = f.srv.users.iter().map(|u| u.token.clone()).collect();
    assert_eq!(tokens.len(), Role::ALL.len());
    let token = |r: Role| f.srv.token_for(r).unwrap().to_string();

    // metadata is open; everything else needs a token.
    assert_eq!(f.get("metadata").await.0, StatusCode::OK);
    let (s, h, v) = f.get("Patient").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(h["www-authenticate"], "Bearer");
    assert_outcome(&v);
    let r =
        f.c.get(f.url("Patient"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let as_role = |r: Role, path: &str| f.c.get(f.url(path)).bearer_auth(token(r));
    let who: Value = as_role(Role::Nurse, "$whoami")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["resourceType"], "Parameters");
    let params = who["parameter"].as_array().unwrap();
    let get = |n: &str| params.iter().find(|p| p["name"] == n).unwrap().clone();
    assert_eq!(get("role")["valueCode"], "nurse");
    assert_eq!(get("user")["valueString"], "Dr Nurse");
    assert_eq!(
        get("practitioner")["valueReference"]["reference"],
        "Practitioner/pr-nurse"
    );

    // Build a chart as the attending.
    let attending = token(Role::Attending);
    let mk = |body: Value| {
        let ty = body["resourceType"].as_str().unwrap().to_string();
        f.c.post(f.url(&ty))
            .bearer_auth(&attending)
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
    };
    let p: Value = mk(patient("Guarded", "Gail", "1966"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = p["id"].as_str().unwrap().to_string();
    let subject = json!({"reference": format!("Patient/{pid}")});
    let obs = mk(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": subject}))
        .await
        .unwrap();
    assert_eq!(obs.status(), StatusCode::CREATED);
    for queue in ["nurse", "frontdesk"] {
        let t = mk(
            json!({"resourceType": "Task", "status": "requested", "intent": "order", "for": subject,
            "performerType": [{"coding": [{"system": "urn:chartty:role", "code": queue}]}]}),
        )
        .await
        .unwrap();
        assert_eq!(t.status(), StatusCode::CREATED);
    }

    let status = |r: Role, path: String| {
        let req = as_role(r, &path);
        async move { req.send().await.unwrap().status() }
    };
    let obs_search = format!("Observation?patient={pid}");
    assert_eq!(
        status(Role::Nurse, obs_search.clone()).await,
        StatusCode::OK
    );
    assert_eq!(
        status(Role::Resident, obs_search.clone()).await,
        StatusCode::OK
    );
    assert_eq!(
        status(Role::Frontdesk, obs_search.clone()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(Role::Billing, obs_search).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(Role::Frontdesk, format!("Patient/{pid}")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(Role::Billing, format!("Condition?patient={pid}")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(Role::Frontdesk, format!("Condition?patient={pid}")).await,
        StatusCode::FORBIDDEN
    );

    // Front desk sees only its own queue.
    let fd: Value = as_role(Role::Frontdesk, "Task")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(matches(&fd).len(), 1);
    assert_eq!(
        fd["entry"][0]["resource"]["performerType"][0]["coding"][0]["code"],
        "frontdesk"
    );
    let nurse: Value = as_role(Role::Nurse, "Task")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(matches(&nurse).len(), 2);
    // Nor can it read another queue's task by id, current or old version.
    let task_id = nurse["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .find(|t| t["performerType"][0]["coding"][0]["code"] == "nurse")
        .and_then(|t| t["id"].as_str())
        .expect("a task in the nurse queue")
        .to_string();
    for path in [
        format!("Task/{task_id}"),
        format!("Task/{task_id}/_history/1"),
    ] {
        assert_eq!(
            status(Role::Frontdesk, path.clone()).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            status(Role::Nurse, path.clone()).await,
            StatusCode::OK,
            "{path}"
        );
    }

    // Writes follow the table.
    let write = |r: Role, body: Value| {
        let ty = body["resourceType"].as_str().unwrap().to_string();
        let req =
            f.c.post(f.url(&ty))
                .bearer_auth(token(r))
                .header("content-type", "application/fhir+json")
                .body(body.to_string());
        async move { req.send().await.unwrap().status() }
    };
    let note = json!({"resourceType": "DocumentReference", "status": "current", "subject": subject,
        "content": [{"attachment": {"data": "eA=="}}]});
    assert_eq!(
        write(Role::Resident, note.clone()).await,
        StatusCode::CREATED
    );
    assert_eq!(write(Role::Billing, note).await, StatusCode::FORBIDDEN);
    // Billing writes billing messages, about patients in its queue.
    let msg = json!({"resourceType": "Communication", "status": "completed", "subject": subject,
        "category": [{"coding": [{"system": "urn:chartty:task-category", "code": "billing"}]}]});
    assert_eq!(
        write(Role::Billing, msg.clone()).await,
        StatusCode::FORBIDDEN
    );
    let billing_task = mk(json!({"resourceType": "Task", "status": "requested", "intent": "order",
        "for": subject, "performerType": [{"coding": [{"system": "urn:chartty:role", "code": "billing"}]}]}))
    .await
    .unwrap();
    assert_eq!(billing_task.status(), StatusCode::CREATED);
    assert_eq!(write(Role::Billing, msg).await, StatusCode::CREATED);
    let clinical =
        json!({"resourceType": "Communication", "status": "completed", "subject": subject});
    assert_eq!(write(Role::Billing, clinical).await, StatusCode::FORBIDDEN);

    // Batch entries pass the same check.
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Patient/{pid}")}},
        {"request": {"method": "GET", "url": format!("Observation?patient={pid}")}},
    ]});
    let v: Value =
        f.c.post(f.url(""))
            .bearer_auth(token(Role::Frontdesk))
            .header("content-type", "application/fhir+json")
            .body(bundle.to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(v["entry"][0]["response"]["status"], "200 OK");
    assert!(
        v["entry"][1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("403")
    );

    // _include does not leak what the role may not read: billing may read
    // Condition but the included Patient is fine; front desk Task include works.
    let inc: Value = as_role(Role::Frontdesk, "Task?_include=Task:patient")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inc["entry"].as_array().unwrap().len(), 2);

    // Nobody writes AuditEvents through the API.
    let forged = json!({"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"requestor": true}], "source": {"observer": {"display": "x"}}});
    assert_eq!(write(Role::Attending, forged).await, StatusCode::FORBIDDEN);

    let Fixture { srv, _dir: dir, .. } = f;
    let db = dir.path().join("portal.db");
    srv.stop().await;
    // Every request was audited with who did it.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let denied: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM audit WHERE role = 'frontdesk' AND status = 403",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(denied >= 2, "{denied}");
        let reads: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM audit WHERE action = 'read' AND type = 'Patient' AND id = ?1",
                [&pid],
                |r| r.get(0),
            )
            .unwrap();
        assert!(reads >= 2, "{reads}");
    }

    // ... and is searchable as AuditEvent after a restart (new tokens).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start_with_staff(ServerConfig { db, demo: None }, listener, all_staff())
        .await
        .unwrap();
    let c = client();
    let url = format!(
        "{}/AuditEvent?patient=Patient/{pid}&agent=Practitioner/pr-frontdesk&_count=100",
        srv.base_url
    );
    let r = c
        .get(&url)
        .bearer_auth(srv.token_for(Role::Attending).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let events: Value = r.json().await.unwrap();
    let events = events["entry"].as_array().unwrap();
    assert!(events.len() >= 3, "{}", events.len());
    assert!(
        events
            .iter()
            .all(|e| e["resource"]["agent"][0]["who"]["reference"] == "Practitioner/pr-frontdesk")
    );
    assert!(events.iter().any(|e| e["resource"]["outcome"] == "4"));
    let r = c
        .get(&url)
        .bearer_auth(srv.token_for(Role::Nurse).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    srv.stop().await;
    drop(dir);
}

/// The database holds patient data: it and its WAL files are the owner's alone.
#[cfg(unix)]
#[tokio::test]
async fn database_files_are_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let f = open_server().await;
    f.create(patient("Private", "Pia", "1980")).await;
    let db = f._dir.path().join("portal.db");
    for name in ["portal.db", "portal.db-wal", "portal.db-shm"] {
        let path = db.with_file_name(name);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} has mode {:o}", mode & 0o777);
    }
    f.srv.stop().await;
}

#[tokio::test]
async fn imported_types_without_search_support_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portal.db");
    let mut store = chartty::server::Store::open(&db).unwrap();
    let written = store
        .ingest([json!({"resourceType": "SupplyDelivery", "id": "sd-1", "status": "completed"})])
        .unwrap();
    assert_eq!(written, 1);
    drop(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start(ServerConfig { db, demo: None }, listener)
        .await
        .unwrap();
    let c = client();
    let r = c
        .get(format!("{}/SupplyDelivery/sd-1", srv.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "W/\"1\"");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "completed");
    let r = c
        .get(format!("{}/SupplyDelivery?_id=sd-1", srv.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_outcome(&r.json().await.unwrap());
    let r = c
        .post(format!("{}/SupplyDelivery", srv.base_url))
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "SupplyDelivery"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    srv.stop().await;
}

#[tokio::test]
async fn what_is_stored_is_validated_and_named() {
    let f = open_server().await;
    let cases = [
        (
            json!({"resourceType": "Patient", "gender": "femal"}),
            "Patient.gender",
        ),
        (
            json!({"resourceType": "Patient", "birthDate": "1984-02-30"}),
            "Patient.birthDate",
        ),
        (
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "K"},
                "effectiveDateTime": "2026-01-10 09:00"}),
            "Observation.effectiveDateTime",
        ),
        (
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "K"},
                "subject": {"reference": "Patient/../../admin"}}),
            "Observation.subject.reference",
        ),
        (
            json!({"resourceType": "Task", "status": "requested", "intent": "order", "priority": "whenever"}),
            "Task.priority",
        ),
        (
            json!({"resourceType": "Condition", "subject": {"reference": "Patient/p"},
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "gone"}]}}),
            "Condition.clinicalStatus",
        ),
    ];
    for (body, element) in cases {
        let ty = body["resourceType"].as_str().unwrap().to_string();
        let (s, _, v) = f.post(&ty, &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{element}: {v}");
        assert_outcome(&v);
        assert_eq!(v["issue"][0]["expression"][0], element, "{v}");
    }
    // A resource larger than the server stores: 400, not 500.
    let big = json!({"resourceType": "Patient", "name": [{"text": "x".repeat(1_200_000)}]});
    let (s, _, v) = f.post("Patient", &big).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["issue"][0]["code"], "too-costly");
    // Too many values in one parameter, or too many parameters: 400.
    let ids: Vec<String> = (0..101).map(|i| format!("p{i}")).collect();
    let (s, _, v) = f.get(&format!("Patient?_id={}", ids.join(","))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let many: Vec<String> = (0..51).map(|i| format!("family=x{i}")).collect();
    let (s, _, _) = f.get(&format!("Patient?{}", many.join("&"))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let all = f.get_ok("Patient?_summary=count").await;
    assert_eq!(all["total"], 0, "nothing invalid was stored");
    f.srv.stop().await;
}

#[tokio::test]
async fn conditional_headers_that_are_not_ascii_are_refused_not_ignored() {
    let f = open_server().await;
    let created = f.create(patient("Header", "Hedda", "1970")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let mut changed = created.clone();
    changed["gender"] = json!("male");
    let bad = reqwest::header::HeaderValue::from_bytes(b"W/\"1\xff\"").unwrap();
    let r =
        f.c.put(f.url(&format!("Patient/{id}")))
            .header("content-type", "application/fhir+json")
            .header("if-match", bad.clone())
            .body(changed.to_string())
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_outcome(&r.json().await.unwrap());
    assert_eq!(f.get_ok(&format!("Patient/{id}")).await["gender"], "female");
    let r =
        f.c.post(f.url("Patient"))
            .header("content-type", "application/fhir+json")
            .header("if-none-exist", bad)
            .body(patient("Header", "Other", "1971").to_string())
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(f.get_ok("Patient?_summary=count").await["total"], 1);
    f.srv.stop().await;
}

/// Open handles on the database file itself (not its -wal/-shm).
#[cfg(target_os = "linux")]
fn db_handles(db: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| p == db)
        .count()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_share_a_bounded_pool_and_busy_means_503() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portal.db");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = server::Options {
        readers: 3,
        wait: std::time::Duration::from_secs(30),
        ..server::Options::default()
    };
    let srv = server::start_with(
        ServerConfig {
            db: db.clone(),
            demo: None,
        },
        listener,
        Vec::new(),
        options,
    )
    .await
    .unwrap();
    let db = std::fs::canonicalize(&db).unwrap();
    let base = srv.base_url.clone();
    let c = client();
    for i in 0..20 {
        let r = c
            .post(format!("{base}/Patient"))
            .header("content-type", "application/fhir+json")
            .body(patient(&format!("Pool{i}"), "Pat", "1980").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // 300 clients at once, each with its own connection.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, db) = (stop.clone(), db.clone());
        std::thread::spawn(move || {
            let mut most = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(db_handles(&db));
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            most
        })
    };
    let mut tasks = Vec::new();
    for i in 0..300 {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let r = c
                .get(format!("{base}/Patient?family=pool{}&_count=5", i % 20))
                .send()
                .await
                .unwrap();
            r.status()
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap().as_u16()).or_insert(0) += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.join().unwrap();
    assert_eq!(statuses, [(200, 300)].into_iter().collect(), "{statuses:?}");
    // The readers, the writer and the checkpointer, whatever the load.
    assert!(most <= 3 + 2, "{most} handles on the database");
    srv.stop().await;

    // With no time to wait, a busy server says so: 503 with Retry-After,
    // never 500.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start_with(
        ServerConfig { db, demo: None },
        listener,
        Vec::new(),
        server::Options {
            readers: 1,
            wait: std::time::Duration::ZERO,
            ..server::Options::default()
        },
    )
    .await
    .unwrap();
    let base = srv.base_url.clone();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new()
                .get(format!("{base}/Patient?family=pool{}", i % 20))
                .send()
                .await
                .unwrap();
            let retry = r.headers().get("retry-after").is_some();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, retry, body)
        }));
    }
    let mut busy = 0;
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status} {body}"
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            busy += 1;
            assert!(retry);
            assert_outcome(&body);
        }
    }
    assert!(busy > 0, "some requests found the server busy");
    srv.stop().await;
}
