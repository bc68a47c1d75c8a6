//! Labelled mail: the shipped training corpus, an ops team's own labelled sets
//! (`supportd classify eval`), and the evaluation of a classifier on them.
//!
//! Format (TOML, any number of `[[case]]` per file):
//! `id`, `from`, `subject`, `body` (the text the customer wrote; a quoted history below it is
//! cut off as the daemon does), `category` (inquiry | status_query | complaint | suggestion),
//! `severity` (general | major, complaints only), `urgent` (true, or absent), `language`
//! (zh-Hans | zh-Hant | en), optional `vip`, `kind`, `note`.

use crate::domain::{Category, Classification, EmailAddress, Severity};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One labelled mail.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct LabelledMail {
    pub id: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub subject: String,
    pub body: String,
    pub category: String,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub urgent: bool,
    #[serde(default)]
    pub vip: Option<bool>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Deserialize)]
struct File {
    case: Vec<LabelledMail>,
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: case {id}: {message}")]
    Label {
        path: String,
        id: String,
        message: String,
    },
}

impl LabelledMail {
    pub fn category(&self) -> Option<Category> {
        Category::parse(&self.category)
    }
    pub fn severity(&self) -> Option<Severity> {
        self.severity.as_deref().and_then(Severity::parse)
    }
    pub fn sender(&self) -> Option<EmailAddress> {
        EmailAddress::parse(&self.from)
    }
    /// The text the classifier sees: the body with any quoted history cut off (as for a
    /// fetched mail).
    pub fn new_text(&self) -> String {
        crate::inbound::reply_text::extract(&self.body)
    }
}

/// Parses one file's cases. `path` names it in errors.
pub fn parse(text: &str, path: &str) -> Result<Vec<LabelledMail>, CorpusError> {
    let f: File = toml::from_str(text).map_err(|e| CorpusError::Parse {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    for c in &f.case {
        let bad = |message: String| CorpusError::Label {
            path: path.to_string(),
            id: c.id.clone(),
            message,
        };
        if c.category().is_none() {
            return Err(bad(format!(
                "category {:?}: inquiry, status_query, complaint or suggestion",
                c.category
            )));
        }
        if let Some(s) = &c.severity {
            if Severity::parse(s).is_none() {
                return Err(bad(format!("severity {s:?}: general or major")));
            }
        }
    }
    Ok(f.case)
}

/// Loads a labelled file, or every `*.toml` of a directory (sorted by name).
pub fn load(path: &Path) -> Result<Vec<LabelledMail>, CorpusError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| CorpusError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|source| CorpusError::Read {
                path: path.display().to_string(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        let mut all = Vec::new();
        for f in files {
            all.extend(parse(&read(&f)?, &f.display().to_string())?);
        }
        Ok(all)
    } else {
        parse(&read(path)?, &path.display().to_string())
    }
}

/// The shipped training corpus (embedded): 4,700 mails by twelve independent writers who never
/// saw the rules or the model: 2,080 of every kind by four, 2,620 on urgency and complaint
/// severity by eight more (see `corpus/README.md`; the id prefix names the writer).
pub fn shipped() -> Vec<LabelledMail> {
    const FILES: &[(&str, &str)] = &[
        ("corpus/retail.toml", include_str!("corpus/retail.toml")),
        ("corpus/lab.toml", include_str!("corpus/lab.toml")),
        ("corpus/saas.toml", include_str!("corpus/saas.toml")),
        ("corpus/services.toml", include_str!("corpus/services.toml")),
        ("corpus/urgency.toml", include_str!("corpus/urgency.toml")),
        ("corpus/major.toml", include_str!("corpus/major.toml")),
        ("corpus/urgency2.toml", include_str!("corpus/urgency2.toml")),
        ("corpus/urgency3.toml", include_str!("corpus/urgency3.toml")),
        ("corpus/urgency4.toml", include_str!("corpus/urgency4.toml")),
        ("corpus/major2.toml", include_str!("corpus/major2.toml")),
        (
            "corpus/borderline12.toml",
            include_str!("corpus/borderline12.toml"),
        ),
    ];
    FILES
        .iter()
        .flat_map(|(p, t)| parse(t, p).unwrap_or_default())
        .collect()
}

/// A classifier's figures on a labelled set.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Evaluation {
    pub mails: usize,
    pub category_right: usize,
    /// `confusion[labelled][predicted]`, `Category::ALL` order.
    pub confusion: [[usize; 4]; 4],
    /// Complaints labelled major / of them classified complaint and major.
    pub major: usize,
    pub major_found: usize,
    /// Complaints whose severity was right (of those classified complaint).
    pub severity_right: usize,
    pub severity_judged: usize,
    pub urgent_right: usize,
    pub urgent_labelled: usize,
    pub urgent_found: usize,
    pub urgent_false: usize,
    pub language_right: usize,
    pub language_labelled: usize,
    /// (id, what was wrong) of every miss.
    pub misses: Vec<(String, String)>,
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "n/a".into()
    } else {
        format!("{:.1} %", a as f64 * 100.0 / b as f64)
    }
}

impl Evaluation {
    /// Adds one mail's classification.
    pub fn add(&mut self, m: &LabelledMail, k: &Classification) {
        self.mails += 1;
        let Some(want) = m.category() else { return };
        let (wi, gi) = (want as usize, k.category as usize);
        self.confusion[wi][gi] += 1;
        let mut wrong = Vec::new();
        if wi == gi {
            self.category_right += 1;
        } else {
            wrong.push(format!(
                "category {} → {}",
                want.as_str(),
                k.category.as_str()
            ));
        }
        if want == Category::Complaint {
            let major = m.severity() == Some(Severity::Major);
            if major {
                self.major += 1;
                if k.severity == Some(Severity::Major) {
                    self.major_found += 1;
                } else {
                    wrong.push("major missed".into());
                }
            }
            if k.category == Category::Complaint {
                self.severity_judged += 1;
                if (k.severity == Some(Severity::Major)) == major {
                    self.severity_right += 1;
                } else if !major {
                    wrong.push("general → major".into());
                }
            }
        }
        if m.urgent {
            self.urgent_labelled += 1;
            if k.urgent {
                self.urgent_found += 1;
            }
        } else if k.urgent {
            self.urgent_false += 1;
        }
        if k.urgent == m.urgent {
            self.urgent_right += 1;
        } else {
            wrong.push(format!("urgent {} → {}", m.urgent, k.urgent));
        }
        if let Some(l) = &m.language {
            self.language_labelled += 1;
            if k.language.code() == l {
                self.language_right += 1;
            } else {
                wrong.push(format!("language {l} → {}", k.language.code()));
            }
        }
        if !wrong.is_empty() {
            self.misses.push((m.id.clone(), wrong.join("; ")));
        }
    }

    pub fn category_accuracy(&self) -> f64 {
        ratio(self.category_right, self.mails)
    }
    /// Complaints recognised as complaints.
    pub fn complaint_recall(&self) -> f64 {
        let c = Category::Complaint as usize;
        ratio(self.confusion[c][c], self.confusion[c].iter().sum())
    }
    pub fn major_recall(&self) -> f64 {
        ratio(self.major_found, self.major)
    }
    pub fn urgent_accuracy(&self) -> f64 {
        ratio(self.urgent_right, self.mails)
    }
    pub fn language_accuracy(&self) -> f64 {
        ratio(self.language_right, self.language_labelled)
    }

    /// Precision and recall of each category.
    pub fn per_class(&self) -> Vec<(Category, f64, f64)> {
        Category::ALL
            .iter()
            .map(|c| {
                let i = *c as usize;
                let predicted: usize = (0..4).map(|w| self.confusion[w][i]).sum();
                let labelled: usize = self.confusion[i].iter().sum();
                (
                    *c,
                    ratio(self.confusion[i][i], predicted),
                    ratio(self.confusion[i][i], labelled),
                )
            })
            .collect()
    }

    /// The figures as text: accuracy per field, per-class precision and recall, the confusion
    /// matrix.
    pub fn render(&self) -> String {
        let mut s = format!(
            "mails {}\ncategory            {:>8}  ({} of {})\ncomplaints found    {:>8}\nmajor found         {:>8}  ({} of {})\nseverity            {:>8}  ({} of {} complaints classified as complaints)\nurgent              {:>8}  ({} of {}; urgent found {} of {}, {} false alarms)\nlanguage            {:>8}  ({} of {})\n\nper category        precision   recall\n",
            self.mails,
            pct(self.category_right, self.mails),
            self.category_right,
            self.mails,
            pct(
                self.confusion[2][2],
                self.confusion[2].iter().sum()
            ),
            pct(self.major_found, self.major),
            self.major_found,
            self.major,
            pct(self.severity_right, self.severity_judged),
            self.severity_right,
            self.severity_judged,
            pct(self.urgent_right, self.mails),
            self.urgent_right,
            self.mails,
            self.urgent_found,
            self.urgent_labelled,
            self.urgent_false,
            pct(self.language_right, self.language_labelled),
            self.language_right,
            self.language_labelled,
        );
        for (c, p, r) in self.per_class() {
            s.push_str(&format!(
                "  {:<16} {:>9.1} % {:>7.1} %\n",
                c.as_str(),
                p * 100.0,
                r * 100.0
            ));
        }
        s.push_str("\nconfusion (rows: labelled, columns: classified)\n                  inquiry  status  complaint  suggestion\n");
        for c in Category::ALL {
            let row = self.confusion[c as usize];
            s.push_str(&format!(
                "  {:<14} {:>8} {:>7} {:>10} {:>11}\n",
                c.as_str(),
                row[0],
                row[1],
                row[2],
                row[3]
            ));
        }
        s
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
