//! Names, addresses and phone numbers of the demo population.
//!
//! The lists mix origins and spellings on purpose: accents (José, Zoë,
//! Ordóñez), apostrophes, hyphens and particles are what patient search has to
//! get right. [`SPELLED`] adds letters that are not a base letter plus an
//! accent (ø, ł, ı, ß, æ, đ), which a keyboard user types spelled out
//! ("soren", "lukasz", "strasse").

use super::rng::{Rng, one_in};

pub(crate) const FEMALE_GIVEN: &[&str] = &[
    "Maria",
    "Zoë",
    "Ana",
    "Chloé",
    "Aisha",
    "Mei",
    "Sofia",
    "Fatima",
    "Emily",
    "Olivia",
    "Renée",
    "Ingrid",
    "Priya",
    "Hannah",
    "Grace",
    "Lucía",
    "Amara",
    "Noémie",
    "Keiko",
    "Sarah",
    "Linh",
    "Siobhán",
    "Élodie",
    "Nadia",
    "Ruth",
    "Dorothy",
    "Margaret",
    "Ayşe",
    "Małgorzata",
    "Joan",
    "Patricia",
    "Inés",
    "Leila",
    "Yuki",
    "Beatriz",
];

pub(crate) const MALE_GIVEN: &[&str] = &[
    "José",
    "Agustín",
    "Liam",
    "Noah",
    "Mohammed",
    "Wei",
    "Ravi",
    "Jean-Luc",
    "Søren",
    "François",
    "Andrés",
    "Kwame",
    "Ethan",
    "James",
    "Daniel",
    "Hiroshi",
    "Oluwaseun",
    "Matteo",
    "Jürgen",
    "Tomás",
    "Björn",
    "Dmitri",
    "Samuel",
    "Robert",
    "William",
    "Ömer",
    "Luca",
    "Diego",
    "Thomas",
    "Arjun",
    "Minh",
    "George",
    "Sean",
    "Rafael",
    "Hugo",
];

pub(crate) const FAMILY: &[&str] = &[
    "Ordóñez",
    "García",
    "Müller",
    "Nguyễn",
    "O'Brien",
    "Smith",
    "Johnson",
    "Okafor",
    "Kowalski",
    "Rossi",
    "Schmidt",
    "Dubois",
    "Chen",
    "Patel",
    "Kim",
    "Haddad",
    "Fernández",
    "Jensen",
    "Novák",
    "Yılmaz",
    "Papadopoulos",
    "Brown",
    "Williams",
    "Martínez",
    "Núñez",
    "Lefèvre",
    "Andersson",
    "Sato",
    "Abebe",
    "MacLeod",
    "van der Berg",
    "Smith-Jones",
    "Thompson",
    "Walker",
    "Rodríguez",
    "Ivanova",
    "Cohen",
    "Singh",
    "Mensah",
    "Lindqvist",
    "Da Silva",
    "Murphy",
    "Hernández",
    "Wright",
    "Baker",
    "Tanaka",
    "Zhou",
    "Björklund",
    "Gómez",
    "Clarke",
];

/// Whole names (female?, given names, family) whose letters decomposition
/// does not reduce to a base letter: every letter of ø ł ı ễ ß æ đ þ appears.
pub(crate) const SPELLED: &[(bool, &[&str], &str)] = &[
    (false, &["Søren"], "Østergaard"),
    (false, &["Łukasz"], "Wójcik"),
    (true, &["Ayşe"], "Yılmaz"),
    (true, &["Thị", "Hương"], "Nguyễn"),
    (false, &["Văn", "Minh"], "Đặng"),
    (false, &["Jürgen"], "Strauß"),
    (true, &["Mette"], "Kjærgaard"),
    (true, &["Sæunn"], "Þórsdóttir"),
    (false, &["Bjørn"], "Kjær"),
    (true, &["Małgorzata"], "Łęcka"),
    (false, &["Emre"], "Işık"),
    (true, &["Anneliese"], "Meißner"),
    (false, &["Đức"], "Trần"),
];

/// One patient in this many (counted in a row, offset by the seed) carries
/// a name from [`SPELLED`], in list order: any 500 patients in a row hold
/// each of them.
const SPELLED_PERIOD: u64 = 25;

/// The [`SPELLED`] name of patient `index`, if it has one.
pub(crate) fn spelled(seed: u64, index: usize) -> Option<PersonName> {
    if !one_in(seed, 0x5BE1_1ED0, SPELLED_PERIOD, index) {
        return None;
    }
    let (female, given, family) = SPELLED[index / SPELLED_PERIOD as usize % SPELLED.len()];
    Some(PersonName {
        given: given.to_vec(),
        family,
        female,
    })
}

const STREETS: &[&str] = &[
    "Maple Street",
    "Oak Avenue",
    "Elm Street",
    "Harbor Road",
    "Main Street",
    "Cedar Lane",
    "Pine Street",
    "Washington Avenue",
    "Mill Road",
    "Lakeview Drive",
    "Chestnut Street",
    "School Street",
    "Riverside Drive",
    "Church Street",
    "Highland Avenue",
    "Park Place",
];

/// Fictional towns with real state and ZIP prefixes of one region.
const TOWNS: &[(&str, &str, &str)] = &[
    ("Riverton", "MA", "017"),
    ("Fairview", "MA", "018"),
    ("Millbrook", "MA", "019"),
    ("Eastport", "MA", "021"),
    ("Greenfield Hills", "MA", "013"),
    ("Westbury", "NH", "030"),
    ("Lakeside", "RI", "028"),
];

pub(crate) struct PersonName {
    pub given: Vec<&'static str>,
    pub family: &'static str,
    pub female: bool,
}

impl PersonName {
    pub fn text(&self) -> String {
        format!("{} {}", self.given.join(" "), self.family)
    }
}

/// Sex and name from a stream of their own, so that two patients can be given
/// the same name (and then differ by birth date) without sharing anything else.
pub(crate) fn person_name(rng: &mut Rng) -> PersonName {
    let female = rng.chance(0.52);
    let pool = if female { FEMALE_GIVEN } else { MALE_GIVEN };
    let first = *rng.pick(pool);
    let mut given = vec![first];
    if rng.chance(0.35) {
        let middle = *rng.pick(pool);
        if middle != first {
            given.push(middle);
        }
    }
    let family = *rng.pick(FAMILY);
    PersonName {
        given,
        family,
        female,
    }
}

pub(crate) struct Address {
    pub line: String,
    pub city: &'static str,
    pub state: &'static str,
    pub postal_code: String,
}

pub(crate) fn address(rng: &mut Rng) -> Address {
    let (city, state, zip) = *rng.pick(TOWNS);
    Address {
        line: format!("{} {}", rng.range(2, 980), rng.pick(STREETS)),
        city,
        state,
        postal_code: format!("{zip}{:02}", rng.range(1, 99)),
    }
}

/// Numbers in the 555-01xx block, which is reserved for fiction.
pub(crate) fn phone(rng: &mut Rng) -> String {
    let area = rng.pick(&["617", "508", "978", "603", "401"]);
    format!("+1 {area}-555-01{:02}", rng.range(0, 99))
}
