//! The two languages emails and reports come in.

use crate::infra::error::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Locale {
    Ru,
    En,
}

impl Locale {
    pub fn parse(field: &str, s: &str) -> Result<Locale, FieldError> {
        match s {
            "ru" => Ok(Locale::Ru),
            "en" => Ok(Locale::En),
            _ => Err(FieldError::new(field, "must be ru or en")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Ru => "ru",
            Locale::En => "en",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ru_and_en_are_locales() {
        assert_eq!(Locale::parse("locale", "ru").unwrap(), Locale::Ru);
        assert_eq!(Locale::parse("locale", "en").unwrap().as_str(), "en");
        for bad in ["", "de", "RU", " ru", "en-GB"] {
            assert_eq!(Locale::parse("locale", bad).unwrap_err().field, "locale");
        }
    }
}
