//! Function libraries (FUNCTION LOAD and friends).

#[derive(Default)]
pub struct Libraries {}

impl Libraries {
    pub fn function_count(&self) -> usize {
        0
    }
    pub fn library_count(&self) -> usize {
        0
    }
    pub fn code_bytes(&self) -> usize {
        0
    }
}
