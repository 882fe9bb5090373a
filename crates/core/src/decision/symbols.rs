//! Shared tables for the compact reports (issue #17): a finding's text is stored once per
//! process however many reports list it, and a report refers to it by number (a CVE id needs
//! no entry: its number is the id itself, packed).
//!
//! The [`Interner`] appends; a [`Symbols`] is a cheap, immutable copy of its tables (chunks
//! shared by `Arc`) that an index keeps to read the reports it holds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::compact::Repo;
use crate::api::scan_policy::Severity;

/// Entries per chunk: a copy of the tables costs one pointer per chunk, an append to a shared
/// chunk at most one chunk copied.
const CHUNK: usize = 1024;

/// The tables hold more entries than a `u32` can name (never in practice: it would take tens
/// of GiB of distinct finding texts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the admission cache's symbol table is full")]
pub struct SymbolsFull;

/// An append-only vector whose copies share all but the last chunk.
#[derive(Clone, Debug)]
struct Chunked<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> Chunked<T> {
    fn push(&mut self, value: T, limit: u32) -> Result<u32, SymbolsFull> {
        let i = u32::try_from(self.len)
            .ok()
            .filter(|i| *i < limit)
            .ok_or(SymbolsFull)?;
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(value),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(value);
                self.chunks.push(Arc::new(chunk));
            }
        }
        self.len += 1;
        Ok(i)
    }

    fn get(&self, i: u32) -> Option<&T> {
        let i = usize::try_from(i).ok()?;
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }
}

/// What a finding says besides its id: in real reports (and the benchmark's) one CVE comes
/// with the same package, severity and score in many images, so the three are one symbol.
#[derive(Clone, Debug, PartialEq)]
pub struct Detail {
    pub severity: Severity,
    /// A symbol of [`Symbols::text`].
    pub package: Option<u32>,
    pub score: Option<f64>,
}

/// A finding id as a number: `CVE-YYYY-NNNN…` packed into the number itself (no table entry),
/// anything else a symbol of [`Symbols::text`]. Small for what is common (a CVE of this
/// century: 4 bytes as a varint), since reports store it as one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdSym(pub(super) u64);

const CVE_YEAR_BASE: u64 = 1990;
/// Digits in a CVE number that packs: its width is kept, leading zeros included.
const CVE_WIDTHS: std::ops::RangeInclusive<usize> = 4..=11;

impl IdSym {
    /// `id` packed, when it is a CVE id whose text the packed form gives back exactly: the
    /// lowest bit set, then 3 bits of width (from 4), 7 of year (from 1990), the number.
    fn cve(id: &str) -> Option<Self> {
        let rest = id.strip_prefix("CVE-")?;
        let (year, number) = rest.split_once('-')?;
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if year.len() != 4
            || !digits(year)
            || !CVE_WIDTHS.contains(&number.len())
            || !digits(number)
        {
            return None;
        }
        let year = year.parse::<u64>().ok()?.checked_sub(CVE_YEAR_BASE)?;
        let value = number.parse::<u64>().ok()?;
        if year >= 1 << 7 {
            return None;
        }
        let width = (number.len() - CVE_WIDTHS.start()) as u64;
        Some(Self((value << 10 | year << 3 | width) << 1 | 1))
    }

    fn text(sym: u32) -> Self {
        Self(u64::from(sym) << 1)
    }

    /// The CVE id this packs, if it packs one.
    fn unpacked(self) -> Option<String> {
        if self.0 & 1 == 0 {
            return None;
        }
        let packed = self.0 >> 1;
        let width = (packed & 0x7) as usize + CVE_WIDTHS.start();
        let year = (packed >> 3 & 0x7f) + CVE_YEAR_BASE;
        let value = packed >> 10;
        Some(format!("CVE-{year}-{value:0width$}"))
    }
}

/// The tables, as of one point in time.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    text: Chunked<Arc<str>>,
    details: Chunked<Detail>,
}

impl Symbols {
    /// Text symbol `i` (empty for a symbol these tables do not hold: never for a report
    /// built with the interner they were copied from, after the copy).
    pub fn text(&self, i: u32) -> &str {
        self.text.get(i).map_or("", |s| s)
    }

    /// Detail symbol `i`.
    pub fn detail(&self, i: u32) -> Option<&Detail> {
        self.details.get(i)
    }

    /// The finding id `id` stands for.
    pub fn id(&self, id: IdSym) -> std::borrow::Cow<'_, str> {
        match id.unpacked() {
            Some(cve) => cve.into(),
            None => u32::try_from(id.0 >> 1).map_or("", |i| self.text(i)).into(),
        }
    }
}

/// Appends to the tables, each entry once.
#[derive(Debug, Default)]
pub struct Interner {
    symbols: Symbols,
    text: HashMap<Arc<str>, u32>,
    details: HashMap<(Severity, Option<u32>, Option<u64>), u32>,
    /// Scan statuses, shared by reference.
    shared: HashSet<Arc<str>>,
    /// Repositories, shared by reference.
    pub(super) repos: HashSet<Arc<Repo>>,
}

impl Interner {
    /// An empty interner.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the tables as they are now.
    pub fn symbols(&self) -> Symbols {
        self.symbols.clone()
    }

    /// The symbol of `s`.
    pub fn text(&mut self, s: &str) -> Result<u32, SymbolsFull> {
        if let Some(i) = self.text.get(s) {
            return Ok(*i);
        }
        let s: Arc<str> = s.into();
        let i = self.symbols.text.push(s.clone(), u32::MAX)?;
        self.text.insert(s, i);
        Ok(i)
    }

    /// The symbol of finding id `id`.
    pub fn id(&mut self, id: &str) -> Result<IdSym, SymbolsFull> {
        match IdSym::cve(id) {
            Some(packed) => Ok(packed),
            None => self.text(id).map(IdSym::text),
        }
    }

    /// The symbol of `detail`.
    pub fn detail(&mut self, detail: Detail) -> Result<u32, SymbolsFull> {
        let key = (
            detail.severity,
            detail.package,
            detail.score.map(f64::to_bits),
        );
        if let Some(i) = self.details.get(&key) {
            return Ok(*i);
        }
        let i = self.symbols.details.push(detail, u32::MAX)?;
        self.details.insert(key, i);
        Ok(i)
    }

    /// `s`, shared with every earlier equal string given here.
    pub fn shared(&mut self, s: &str) -> Arc<str> {
        match self.shared.get(s) {
            Some(k) => k.clone(),
            None => {
                let k: Arc<str> = s.into();
                self.shared.insert(k.clone());
                k
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cve_ids_pack_only_when_they_unpack_to_the_same_text() {
        for id in [
            "CVE-2024-3094",
            "CVE-1999-0001",
            "CVE-2017-1000117",
            "CVE-2024-00123",
        ] {
            let packed = IdSym::cve(id);
            assert_eq!(packed.and_then(IdSym::unpacked).as_deref(), Some(id));
        }
        for id in [
            "CVE-2024-123",
            "CVE-2024-123456789012",
            "CVE-2118-1234",
            "cve-2024-3094",
            "CVE-24-3094",
            "CVE-1989-3094",
            "CVE-2024-3094 ",
            "CVE-2024-+123",
            "GHSA-xxxx-yyyy-zzzz",
            "",
        ] {
            assert_eq!(IdSym::cve(id), None, "{id}");
        }
    }

    #[test]
    fn symbols_copied_earlier_still_read_what_they_held() {
        let mut interner = Interner::new();
        let a = interner.text("a").ok();
        let before = interner.symbols();
        let ids: Vec<_> = (0..3000)
            .map(|i| interner.text(&format!("p{i}")).ok())
            .collect();
        let after = interner.symbols();
        assert_eq!(a.map(|a| before.text(a)), Some("a"));
        assert_eq!(interner.text("a").ok(), a, "interned once");
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(id.map(|id| after.text(id)), Some(format!("p{i}").as_str()));
        }
        assert_eq!(ids[2999].map(|id| before.text(id)), Some(""));
    }

    proptest! {
        #[test]
        fn every_id_reads_back_as_given(id in "(CVE-[0-9]{1,5}-[0-9]{0,13})|[ -~]{0,20}") {
            let mut interner = Interner::new();
            let sym = interner.id(&id);
            prop_assert!(sym.is_ok());
            if let Ok(sym) = sym {
                let symbols = interner.symbols();
                prop_assert_eq!(symbols.id(sym), id.as_str());
            }
        }
    }
}
