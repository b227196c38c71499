//! The price table analytics costs tokens with: built-in list prices, or a JSON file the
//! operator edits while the server runs (`--prices`). The file is read again whenever its
//! modification time changes, so a corrected price shows on the next request, for the past too
//! (costs are computed when asked, from stored token counts). A file that stops parsing keeps
//! the last good table and logs why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use task_core::sync::lock;
use task_store::analytics::{Price, Prices};

use crate::HttpError;

/// List prices (US dollars per million tokens) of the providers' default models when this
/// was written; a `--prices` file replaces the whole table.
pub fn default_prices() -> Prices {
    let price = |input, output| Price {
        input_per_million: input,
        output_per_million: output,
    };
    Prices(BTreeMap::from([
        ("openai/gpt-4o-mini".to_owned(), price(0.15, 0.60)),
        ("anthropic/claude-sonnet-4-5".to_owned(), price(3.0, 15.0)),
        ("gemini/gemini-2.5-flash".to_owned(), price(0.30, 2.50)),
        ("offline/*".to_owned(), price(0.0, 0.0)),
    ]))
}

/// Reads a price file: `{"provider/model": {"inputPerMillion": 0.15, "outputPerMillion": 0.6}}`.
///
/// # Errors
/// [`HttpError::InvalidConfig`] naming the file and what is wrong.
pub fn read_prices(path: &Path) -> Result<Prices, HttpError> {
    let invalid = |reason: String| HttpError::InvalidConfig {
        setting: "prices",
        reason: format!("{}: {reason}", path.display()),
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    let prices: Prices = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    prices.validate().map_err(invalid)?;
    Ok(prices)
}

/// The current price table.
#[derive(Debug)]
pub struct PriceBook {
    file: Option<PathBuf>,
    current: Mutex<(Option<SystemTime>, Prices)>,
}

impl PriceBook {
    /// Fixed prices.
    pub fn fixed(prices: Prices) -> PriceBook {
        PriceBook {
            file: None,
            current: Mutex::new((None, prices)),
        }
    }

    /// Prices from `path`, read now and again whenever the file changes.
    ///
    /// # Errors
    /// As [`read_prices`]: a server does not start on a broken price file.
    pub fn watching(path: impl Into<PathBuf>) -> Result<PriceBook, HttpError> {
        let path = path.into();
        let prices = read_prices(&path)?;
        Ok(PriceBook {
            current: Mutex::new((modified(&path), prices)),
            file: Some(path),
        })
    }

    /// The table now (re-reading the file if it changed).
    pub fn prices(&self) -> Prices {
        let mut current = lock(&self.current);
        if let Some(path) = &self.file {
            let stamp = modified(path);
            if stamp != current.0 {
                current.0 = stamp;
                match read_prices(path) {
                    Ok(prices) => {
                        tracing::info!(file = %path.display(), "price table reloaded");
                        current.1 = prices;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "price file unreadable; keeping the last good table");
                    }
                }
            }
        }
        current.1.clone()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_file_is_used_on_the_next_read_and_a_broken_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.json");
        std::fs::write(
            &path,
            r#"{"openai/m": {"inputPerMillion": 1, "outputPerMillion": 2}}"#,
        )
        .unwrap();
        let book = PriceBook::watching(&path).unwrap();
        assert_eq!(
            book.prices().of("openai", "m").unwrap().output_per_million,
            2.0
        );

        std::fs::write(
            &path,
            r#"{"openai/m": {"inputPerMillion": 1, "outputPerMillion": 3}}"#,
        )
        .unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(
            book.prices().of("openai", "m").unwrap().output_per_million,
            3.0
        );

        std::fs::write(&path, "{not json").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later + std::time::Duration::from_secs(5))
            .unwrap();
        assert_eq!(
            book.prices().of("openai", "m").unwrap().output_per_million,
            3.0
        );
    }

    #[test]
    fn bad_files_are_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.json");
        for bad in [
            r#"{"openai/m": {"inputPerMillion": -1, "outputPerMillion": 2}}"#,
            r#"{"nomodel": {"inputPerMillion": 1, "outputPerMillion": 2}}"#,
            r#"{"openai/m": {"inputPerMillion": 1}}"#,
            r#"{"openai/m": {"inputPerMillion": 1, "outputPerMillion": 2, "x": 1}}"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(PriceBook::watching(&path).is_err(), "{bad}");
        }
        assert!(PriceBook::watching(dir.path().join("missing.json")).is_err());
        assert!(default_prices().validate().is_ok());
    }
}
