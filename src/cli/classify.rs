//! `supportd classify train|eval`: rebuild the classification model with a site's corrections,
//! and measure a classifier on labelled mail.

use super::{ClassifyCommand, Cli};
use crate::config::Settings;
use crate::inbound::classify::corpus::{self, LabelledMail};
use crate::inbound::classify::{self as classify, Classifier, SITE_MODEL_FILE};
use crate::store::Store;
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;

pub(super) async fn run(cli: &Cli, command: &ClassifyCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClassifyCommand::Train {
            shipped,
            output,
            correction_weight,
        } => {
            let started = std::time::Instant::now();
            let corpus = corpus::shipped();
            let (rules, corrections, target) = if *shipped {
                let target = output
                    .clone()
                    .context("--shipped needs --output (the shipped model is src/inbound/classify/model.bin)")?;
                (Classifier::builtin().with_model(None), Vec::new(), target)
            } else {
                let settings = Settings::load(&cli.config_path()?)?;
                let store = Store::connect(&settings.database_url(), 1).await?;
                let corrections = corrected(&store).await?;
                store.close().await;
                let target = output
                    .clone()
                    .unwrap_or_else(|| settings.service.state_dir.join(SITE_MODEL_FILE));
                let rules = Classifier::new(&settings.classify)
                    .map_err(|p| anyhow::anyhow!(p.join("\n")))?
                    .with_model(None);
                (rules, corrections, target)
            };
            let model = classify::train(&rules, &corpus, &corrections, *correction_weight);
            let bytes = model.to_bytes();
            let tmp = target.with_extension("bin.tmp");
            std::fs::write(&tmp, &bytes)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, &target)
                .with_context(|| format!("cannot write {}", target.display()))?;
            let trained = rules.with_model(Some(Arc::new(model)));
            let fit = trained.evaluate(&corrections);
            println!(
                "model trained on {} shipped mails and {} corrected ticket(s) (each counting {}) in {:.1} s; written to {} ({} KB)",
                corpus.len(),
                corrections.len(),
                correction_weight,
                started.elapsed().as_secs_f64(),
                target.display(),
                bytes.len() / 1024
            );
            if !corrections.is_empty() {
                println!(
                    "on the corrected tickets it now gets the category of {} of {}",
                    fit.category_right, fit.mails
                );
            }
            if !*shipped {
                println!("the daemon loads it at start and on reload (systemctl reload supportd, or SIGHUP); its log then names the model");
            }
            Ok(ExitCode::SUCCESS)
        }
        ClassifyCommand::Eval { path, json, misses } => {
            let mails = corpus::load(path)?;
            let classifier = match &cli.config {
                Some(c) => Settings::load(c)?.classifier(),
                None => Arc::new(Classifier::builtin()),
            };
            let e = classifier.evaluate(&mails);
            if *json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                println!(
                    "{} on {}:",
                    if classifier.has_model() {
                        "the trained model with the rules"
                    } else {
                        "the rules alone"
                    },
                    path.display()
                );
                print!("{}", e.render());
                if *misses {
                    println!("\nmisses:");
                    for (id, what) in &e.misses {
                        println!("  {id}: {what}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The site's corrected tickets as labelled mail.
async fn corrected(store: &Store) -> anyhow::Result<Vec<LabelledMail>> {
    Ok(store
        .corrected_mails()
        .await?
        .into_iter()
        .map(
            |(id, from, subject, text, category, severity, urgent)| LabelledMail {
                id: crate::domain::TicketRef(id).to_string(),
                from,
                subject,
                body: text,
                category,
                severity,
                urgent,
                vip: None,
                language: None,
                kind: Some("correction".into()),
                note: None,
            },
        )
        .collect())
}
