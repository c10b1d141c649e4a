//! A deterministic, clinically coherent demo population.

/// Size and seed of a demo population; the same seed gives the same clinic.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    pub patients: usize,
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            patients: 500,
            seed: 1,
        }
    }
}
