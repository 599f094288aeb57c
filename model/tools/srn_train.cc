// srn-train: trains a siamese similarity model on a dataset split by one of the paper's
// protocols, writes its weights file, and evaluates it on the held-out test classes.
//
//   srn-train --dataset=arabic-voice --protocol=out-of-domain --model=srn-a --out=voice.srnw

#include <atomic>
#include <csignal>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "model/data/dataset.h"
#include "model/data/dataset_loader.h"
#include "model/nn/parallel.h"
#include "model/eval/protocols.h"
#include "model/signature/frame_triplet_trainer.h"
#include "model/signature/signature_protocol.h"
#include "base/flags_help.h"
#include "model/train/train_config.h"
#include "model/train/trainer.h"
#include "model/weights/weights_file.h"
#include "model/tools/tool_common.h"

ABSL_FLAG(
    std::string, dataset, "",
    "arabic-digit, arabic-voice, svc2004, svc2004-task1, sigcomp2009-nfi, sigcomp2009-nisdcc, "
    "or the path of a CSV manifest (docs/DATA_FORMATS.md); or a comma list of signature "
    "datasets (e.g. svc2004,svc2004-task1), merged with each dataset's signers kept apart, for "
    "--protocol=signers");
ABSL_FLAG(std::string, data_dir, "",
          "folder holding the public data sets (default: $SRN_DATA_DIR or ../shared/data)");
ABSL_FLAG(std::string, protocol, "out-of-domain",
          "within-domain, out-of-domain (train and test classes disjoint: choose them with "
          "--test_classes or --split, else --seed draws them for a CSV manifest), one-shot (as "
          "out-of-domain), all (train on every class, no test), svc2004-cv (signature "
          "cross-validation: --folds, --fold), or signers (signature data: every signer trains "
          "but 10% of those with skilled forgeries, held out for validation; no test). The split "
          "is printed and recorded in the weights file");
ABSL_FLAG(std::string, validation, srn::TrainSettings().validation,
          "how validation data is held out of training: classes (10% of them), examples (10% of "
          "each class), or auto (classes when there are 20 or more)");
ABSL_FLAG(std::string, model, srn::TrainSettings().family,
          "srn, sn, gru or lstm with -a (mean pooling), -l (last state) or -s (mean and spread), "
          "e.g. srn-a; or logistic");
ABSL_FLAG(int, hidden, srn::TrainSettings().hidden, "hidden units per layer");
ABSL_FLAG(int, layers, srn::TrainSettings().layers, "stacked recurrent layers");
ABSL_FLAG(int, window, srn::TrainSettings().window,
          "frames concatenated per input (sliding window, stride 1)");
ABSL_FLAG(bool, center_series, srn::TrainSettings().center_series,
          "centre each series on its own mean first (cepstral mean normalization; helps matching "
          "words across speakers, hurts telling speakers apart)");
ABSL_FLAG(double, lr, srn::TrainSettings().learning_rate, "RMSprop learning rate");
ABSL_FLAG(double, dropout, srn::TrainSettings().dropout,
          "dropout rate on hidden activations and the embedding");
ABSL_FLAG(int, batch, srn::TrainSettings().batch_pairs, "pairs per mini-batch");
ABSL_FLAG(int, pairs_per_epoch, srn::TrainSettings().pairs_per_epoch,
          "pairs per epoch (0: 10 x training series, at least 5000)");
ABSL_FLAG(int, epochs, srn::TrainSettings().max_epochs, "maximum epochs");
ABSL_FLAG(int, patience, srn::TrainSettings().patience,
          "stop after this many epochs without a better validation AUC");
ABSL_FLAG(double, lr_decay, srn::TrainSettings().lr_decay,
          "learning-rate factor whenever validation AUC stops rising");
ABSL_FLAG(double, clip, srn::TrainSettings().clip, "elementwise gradient clipping bound");
ABSL_FLAG(double, init_scale, srn::TrainSettings().init_scale,
          "uniform initialisation range [-s, s]");
ABSL_FLAG(double, forgery_fraction, srn::TrainSettings().forgery_fraction,
          "share of negatives that are skilled forgeries (signature data)");
ABSL_FLAG(double, hard_negatives, srn::TrainSettings().hard_negatives,
          "fraction of negatives chosen by hard-negative mining");
ABSL_FLAG(int, hard_negative_pool, srn::TrainSettings().hard_negative_pool,
          "candidates scored per mined negative");
ABSL_FLAG(double, weight_average, srn::TrainSettings().weight_average,
          "0: off; else validate and keep a moving average of the parameters with this decay per "
          "step (e.g. 0.998: about the last 500 steps)");
ABSL_FLAG(uint64_t, seed, srn::TrainSettings().seed,
          "random seed (a CSV manifest's class split unless --test_classes or --split, validation "
          "hold-out, initialisation, pairs, dropout); srn-eval reads it from the weights file");
ABSL_FLAG(int, threads, 0, "worker threads (0: all cores)");
ABSL_FLAG(std::string, out, "", "where to write the weights file");
ABSL_FLAG(bool, eval, true, "evaluate on the test split after training and print a RESULT line");
ABSL_FLAG(int, draws, 10, "one-shot draws in the evaluation");
ABSL_FLAG(std::string, name, "", "model name in the RESULT line (default: the family)");
ABSL_FLAG(int, folds, 4, "--protocol=svc2004-cv: signer-disjoint folds");
ABSL_FLAG(int, augment_copies, srn::TrainSettings().augment_copies,
          "perturbed copies added per training example (signatures: affine + time warp; frames: "
          "time warp + --augment_noise)");
ABSL_FLAG(double, augment_noise, srn::TrainSettings().augment_noise,
          "frames: Gaussian noise added to each copy, in units of each feature's spread");
ABSL_FLAG(double, augment_strength, srn::TrainSettings().augment_strength,
          "signature data: multiplies every augmentation amplitude");
ABSL_FLAG(double, pressure_dropout, 0,
          "signature data: each training example (augmented copies included) has its pressure "
          "features zeroed with this probability, so the model also works without pressure");
ABSL_FLAG(int, fold, 0, "--protocol=svc2004-cv: the fold whose signers are held out (0-based)");
ABSL_FLAG(std::string, extra_train, "",
          "--protocol=svc2004-cv: also train on these whole signature datasets (a comma list, e.g. "
          "svc2004-task1,sigcomp2009-nisdcc); the folds still hold out SVC2004 signers only");
ABSL_FLAG(std::string, objective, "pair",
          "pair (the paper's: similar/dissimilar pairs, cross-entropy on the pooled embedding's "
          "head) or frame-triplet (signature data: triplets with a margin on soft-DTW between "
          "the per-frame states, for srn-eval --srn_score=states-dtw; needs a gru or lstm "
          "model; uses --lr with Adam, --clip as a bound on the gradient's norm, --epochs, "
          "--patience, --lr_decay, --init_scale, --forgery_fraction, --augment_*)");
ABSL_FLAG(double, margin, 0.5, "frame-triplet: margin of the triplet loss");
ABSL_FLAG(double, gamma, 0.1, "frame-triplet: soft-DTW smoothing");
ABSL_FLAG(double, soft_dtw_band, 0.3,
          "frame-triplet: soft-DTW Sakoe-Chiba band as a fraction of the longer series");
ABSL_FLAG(std::string, frame_norm, "none",
          "frame-triplet: per-frame normalization of the states: none or l2 (recorded in the "
          "weights file; srn-eval applies it)");
ABSL_FLAG(std::string, frame_cost, "squared",
          "frame-triplet: soft-DTW's cost between two frames of states: squared (Euclidean) or "
          "euclidean (recorded in the weights file; srn-eval --srn_score=states-dtw uses it)");
ABSL_FLAG(int, batch_triplets, 16, "frame-triplet: triplets per mini-batch");
ABSL_FLAG(int, triplets_per_epoch, 2000, "frame-triplet: triplets per epoch");
ABSL_FLAG(int, mining, 1,
          "frame-triplet: each triplet takes the farthest of this many positives and the "
          "closest of as many negatives (1: no mining)");
ABSL_FLAG(bool, fit_head, true,
          "frame-triplet: after training, fit the pooled embedding's head (which Identify and "
          "Similarity score by) by logistic regression on training pairs, the encoder frozen; "
          "false leaves it random. The per-frame states are the same either way");

namespace {

std::atomic<bool> g_cancel{false};

void OnSignal(int) { g_cancel.store(true); }

// The flag that sets a TrainSettings field, for errors.
std::string FlagName(absl::string_view field) {
  if (field == "family") return "--model";
  if (field == "learning_rate") return "--lr";
  if (field == "batch_pairs") return "--batch";
  if (field == "max_epochs") return "--epochs";
  return absl::StrCat("--", field);
}

// "merged svc2004 (40 signers), svc2004-task1 (40 signers)" for the datasets `names` merged into
// `data` by LoadSignatureDatasets (whose label names start with their dataset's name).
std::string DescribeMerge(const srn::Dataset& data, const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    const std::string prefix = absl::StrCat(name, "/");
    int count = 0;
    for (const std::string& label : data.label_names) count += absl::StartsWith(label, prefix);
    absl::StrAppend(&out, out.empty() ? "merged " : ", ", name, " (", count, " signers)");
  }
  return out;
}

// --objective=frame-triplet: trains `config.arch` on triplets through soft-DTW
// (model/signature/frame_triplet_trainer.h), writes the weights file, and leaves evaluation to
// srn-eval --srn_score=states-dtw. Returns the process exit code.
int TrainFrameTriplet(const srn::TrainConfig& pair_config, const srn::Split& split,
                      bool signature_data, const std::string& out) {
  using srn::tools::Fail;
  const std::string tool = "srn-train";
  if (!signature_data) {
    return Fail(tool, absl::InvalidArgumentError(
                          "--objective=frame-triplet trains signature verifiers: it needs a "
                          "signature dataset (its validation scores skilled forgeries)"));
  }
  srn::FrameTripletConfig config;
  config.arch = pair_config.arch;
  config.window = pair_config.window;
  config.center_series = pair_config.center_series;
  config.kind = pair_config.kind;
  config.augment = pair_config.augment;
  config.training_data = pair_config.training_data;
  config.command = pair_config.command;
  srn::FrameTripletOptions& o = config.options;
  const srn::TrainOptions& p = pair_config.options;
  o.loss.margin = absl::GetFlag(FLAGS_margin);
  o.loss.soft_dtw.gamma = absl::GetFlag(FLAGS_gamma);
  o.loss.soft_dtw.dtw = srn::DtwOptions::Fraction(absl::GetFlag(FLAGS_soft_dtw_band));
  const std::string frame_cost = absl::GetFlag(FLAGS_frame_cost);
  if (frame_cost != "squared" && frame_cost != "euclidean") {
    return Fail(tool, absl::InvalidArgumentError(absl::StrCat(
                          "--frame_cost must be squared or euclidean, got '", frame_cost, "'")));
  }
  o.loss.soft_dtw.dtw.local_cost = frame_cost == "squared" ? srn::DtwLocalCost::kSquaredEuclidean
                                                          : srn::DtwLocalCost::kEuclidean;
  absl::StatusOr<srn::FrameNormalization> norm =
      srn::ParseFrameNormalization(absl::GetFlag(FLAGS_frame_norm));
  if (!norm.ok()) return Fail(tool, norm.status());
  o.loss.normalization = *norm;
  o.learning_rate = p.learning_rate;
  o.clip_norm = p.clip;
  o.init_scale = p.init_scale;
  o.batch_triplets = absl::GetFlag(FLAGS_batch_triplets);
  o.triplets_per_epoch = absl::GetFlag(FLAGS_triplets_per_epoch);
  o.max_epochs = p.max_epochs;
  o.lr_decay = p.lr_decay;
  o.patience = p.patience;
  o.forgery_fraction = p.forgery_fraction;
  o.mining_candidates = absl::GetFlag(FLAGS_mining);
  o.fit_head = absl::GetFlag(FLAGS_fit_head);
  o.seed = p.seed;
  o.threads = p.threads;

  srn::tools::ProgressBar bar;
  srn::FrameTripletCallbacks callbacks;
  callbacks.cancel = &g_cancel;
  callbacks.on_step = [&](int epoch, int step, int steps) {
    if (step % 5 == 0 || step == steps) bar.Update(absl::StrCat("epoch ", epoch), step, steps);
  };
  callbacks.on_epoch = [&](const srn::FrameTripletEpoch& r) {
    bar.Clear();
    std::cerr << absl::StrFormat(
        "epoch %3d  loss %.4f  active %.2f  D+ %.4f  D- %.4f  val skilled EER %.4f (5 refs) "
        "%.4f (1 ref) random %.4f  lr %.2e  %5.1fs%s\n",
        r.epoch, r.train_loss, r.active_fraction, r.mean_d_positive, r.mean_d_negative,
        r.val_eer_skilled, r.val_eer_skilled_1ref, r.val_eer_random, r.learning_rate, r.seconds,
        r.improved ? "  *" : "");
  };
  std::cerr << absl::StrFormat(
      "training %s (window %d) on frame triplets (margin %g, gamma %g, band %g, frames %s, "
      "cost %s) with %d threads\n",
      config.arch.FamilyName(), config.window, o.loss.margin, o.loss.soft_dtw.gamma,
      o.loss.soft_dtw.dtw.band_fraction, srn::FrameNormalizationName(o.loss.normalization),
      srn::FrameCostName(o.loss.soft_dtw.dtw.local_cost),
      o.threads > 0 ? o.threads : srn::DefaultThreads());
  absl::StatusOr<srn::FrameTripletResult> trained =
      srn::TrainFrameTripletModel(split.train, split.validation, config, callbacks);
  bar.Clear();
  if (!trained.ok()) return Fail(tool, trained.status());
  if (trained->cancelled) std::cerr << "cancelled; saving the best model so far\n";
  if (absl::Status s = srn::SaveModel(*trained->model, out); !s.ok()) return Fail(tool, s);
  std::cerr << absl::StrFormat(
      "wrote %s (%s, best validation skilled EER %.4f (mean of 1 and 5 references) at epoch %d, "
      "fingerprint %s); evaluate with srn-eval --srn_score=states-dtw\n",
      out, trained->model->architecture().ToString(), trained->best_val_eer, trained->best_epoch,
      srn::ModelFingerprint(*trained->model));
  if (o.fit_head) {
    std::cerr << absl::StrFormat(
        "head (pooled embedding): logistic regression on %d training pairs, validation pair AUC "
        "%.4f (%.4f with the random head)\n",
        trained->head_pairs, trained->head_val_auc, trained->head_val_auc_before);
  } else {
    std::cerr << "head (pooled embedding): not fitted (--fit_head=false), random\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  srn::ShowOwnFlagsInHelp();
  absl::SetProgramUsageMessage(
      "trains a siamese similarity model and writes its weights file.\n"
      "Examples: srn-train --dataset=arabic-voice --protocol=out-of-domain --model=srn-a "
      "--out=voice.srnw\n"
      "          srn-train --dataset=my/manifest.csv --test_classes=walk,wave --out=my.srnw");
  srn::ParseCommandLineWithHelp(argc, argv);
  using srn::tools::Fail;
  const std::string tool = "srn-train";
  if (absl::Status s = srn::tools::ApplyKernelsFlag(); !s.ok()) return Fail(tool, s);
  const std::string dataset = absl::GetFlag(FLAGS_dataset);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (dataset.empty()) return Fail(tool, absl::InvalidArgumentError("--dataset is required"));
  if (out.empty()) return Fail(tool, absl::InvalidArgumentError("--out is required"));
  std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  if (data_dir.empty()) data_dir = srn::DataDir();

  // svc2004-cv trains one fold of the signature cross-validation
  // (model/signature/signature_protocol.h); srn-eval --protocol=svc2004-cv evaluates the fold
  // models, so no evaluation here. signers trains on every signer of one or several signature
  // datasets but the validation signers (MakeSignatureSignersSplit), with no test.
  const bool signature_cv = absl::GetFlag(FLAGS_protocol) == "svc2004-cv";
  const bool signers = absl::GetFlag(FLAGS_protocol) == "signers";
  const std::vector<std::string> names = absl::StrSplit(dataset, ',');
  if (!absl::GetFlag(FLAGS_extra_train).empty() && !signature_cv) {
    return Fail(tool, absl::InvalidArgumentError(
                          "--extra_train adds training data to --protocol=svc2004-cv folds; with "
                          "--protocol=signers list every dataset in --dataset"));
  }
  if (names.size() > 1 && !signers) {
    return Fail(tool, absl::InvalidArgumentError(absl::StrCat(
                          "a list of datasets (", dataset, ") trains with --protocol=signers")));
  }
  const double pressure_dropout = absl::GetFlag(FLAGS_pressure_dropout);
  if (!(pressure_dropout >= 0 && pressure_dropout <= 1)) {
    return Fail(tool, absl::InvalidArgumentError(absl::StrCat(
                          "--pressure_dropout must be in [0, 1], got ", pressure_dropout)));
  }
  absl::StatusOr<srn::Protocol> protocol = signature_cv || signers
                                               ? srn::Protocol::kAll
                                               : srn::ParseProtocol(absl::GetFlag(FLAGS_protocol));
  if (!protocol.ok()) return Fail(tool, protocol.status());
  if (*protocol == srn::Protocol::kTest) {
    return Fail(tool, absl::InvalidArgumentError(
                          "--protocol=test has no training classes: it is srn-eval's, to evaluate "
                          "a trained model on every class of a dataset"));
  }
  srn::TrainSettings settings;
  settings.family = absl::GetFlag(FLAGS_model);
  settings.hidden = absl::GetFlag(FLAGS_hidden);
  settings.layers = absl::GetFlag(FLAGS_layers);
  settings.window = absl::GetFlag(FLAGS_window);
  settings.center_series = absl::GetFlag(FLAGS_center_series);
  settings.validation = absl::GetFlag(FLAGS_validation);
  settings.learning_rate = absl::GetFlag(FLAGS_lr);
  settings.dropout = absl::GetFlag(FLAGS_dropout);
  settings.batch_pairs = absl::GetFlag(FLAGS_batch);
  settings.pairs_per_epoch = absl::GetFlag(FLAGS_pairs_per_epoch);
  settings.max_epochs = absl::GetFlag(FLAGS_epochs);
  settings.patience = absl::GetFlag(FLAGS_patience);
  settings.lr_decay = absl::GetFlag(FLAGS_lr_decay);
  settings.hard_negatives = absl::GetFlag(FLAGS_hard_negatives);
  settings.weight_average = absl::GetFlag(FLAGS_weight_average);
  settings.seed = absl::GetFlag(FLAGS_seed);
  settings.clip = absl::GetFlag(FLAGS_clip);
  settings.init_scale = absl::GetFlag(FLAGS_init_scale);
  settings.forgery_fraction = absl::GetFlag(FLAGS_forgery_fraction);
  settings.hard_negative_pool = absl::GetFlag(FLAGS_hard_negative_pool);
  settings.augment_copies = absl::GetFlag(FLAGS_augment_copies);
  settings.augment_noise = absl::GetFlag(FLAGS_augment_noise);
  settings.augment_strength = absl::GetFlag(FLAGS_augment_strength);
  absl::StatusOr<srn::TrainSettings> checked =
      srn::CompleteTrainSettings(settings, srn::ZeroMeans::kZero, FlagName);
  if (!checked.ok()) return Fail(tool, checked.status());
  absl::StatusOr<srn::TrainConfig> made = srn::MakeTrainConfig(*checked);
  if (!made.ok()) return Fail(tool, made.status());
  srn::TrainConfig& config = *made;
  srn::TrainOptions& o = config.options;
  o.threads = absl::GetFlag(FLAGS_threads);
  const srn::ValidationSplit validation = *srn::ParseValidationSplit(checked->validation);

  if (signers || signature_cv) {
    if (absl::Status s = srn::tools::RequireNoClassChoice(absl::GetFlag(FLAGS_protocol));
        !s.ok()) {
      return Fail(tool, s);
    }
  }
  absl::StatusOr<srn::Split> split;
  bool signature_data = srn::IsSignatureDataset(dataset);
  if (signers) {
    absl::StatusOr<srn::Dataset> data = names.size() > 1
                                            ? srn::LoadSignatureDatasets(names, data_dir)
                                            : srn::LoadNamedDataset(dataset, data_dir);
    if (!data.ok()) return Fail(tool, data.status());
    if (names.size() > 1) signature_data = true;
    split = srn::MakeSignatureSignersSplit(*data, o.seed);
    if (split.ok()) {
      if (names.size() > 1) {
        split->description = absl::StrCat(DescribeMerge(*data, names), "; ", split->description);
      }
      std::cerr << absl::StrFormat("%s: %d series, %d signers; %s\n", dataset,
                                   data->examples.size(), data->num_labels(), split->description)
                << absl::StrFormat("  train %d, validation %d series\n",
                                   split->train.examples.size(),
                                   split->validation.examples.size());
    }
  } else if (signature_cv) {
    absl::StatusOr<srn::Dataset> data = srn::LoadNamedDataset(dataset, data_dir);
    if (!data.ok()) return Fail(tool, data.status());
    split = srn::MakeSignatureCvSplit(*data, absl::GetFlag(FLAGS_folds), absl::GetFlag(FLAGS_fold),
                                      srn::SignatureCvOptions().fold_seed);
    if (split.ok()) split->test.examples.clear();  // evaluated by srn-eval --protocol=svc2004-cv
    if (const std::string extra = absl::GetFlag(FLAGS_extra_train); split.ok() && !extra.empty()) {
      const std::vector<std::string> extra_names = absl::StrSplit(extra, ',');
      absl::StatusOr<srn::Dataset> more = srn::LoadSignatureDatasets(extra_names, data_dir);
      if (!more.ok()) return Fail(tool, more.status());
      absl::StatusOr<srn::Dataset> merged = srn::MergeDatasets({split->train, *more});
      if (!merged.ok()) return Fail(tool, merged.status());
      split->train = *std::move(merged);
      split->description = absl::StrCat(split->description, "; also trained on every signer of ",
                                        extra, " (", more->num_labels(), " signers)");
    }
  } else {
    split = srn::tools::LoadAndSplit(dataset, data_dir, *protocol, o.seed, validation);
  }
  if (!split.ok()) return Fail(tool, split.status());
  if (names.size() > 1) {
    config.kind = srn::FeatureKind::kSignature;
  } else {
    absl::StatusOr<srn::DatasetSource> source = srn::NamedDatasetSource(dataset, data_dir);
    if (!source.ok()) return Fail(tool, source.status());
    config.kind = srn::DatasetKind(source->format);
  }
  if (signers) {
    config.training_data = absl::StrCat(dataset, " (signers): ", split->description);
  } else {
    config.training_data = signature_cv ? absl::StrCat(dataset, ": ", split->description)
                                        : absl::StrCat(dataset, " (", srn::ProtocolName(*protocol),
                                                       "): ", split->description);
  }
  if (pressure_dropout > 0 && config.kind != srn::FeatureKind::kSignature) {
    return Fail(tool, absl::InvalidArgumentError(
                          "--pressure_dropout needs signature data (pen samples with pressure)"));
  }
  config.augment.pressure_dropout = pressure_dropout;
  config.command = srn::tools::CommandLine(argc, argv);

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const std::string objective = absl::GetFlag(FLAGS_objective);
  if (objective == "frame-triplet") {
    return TrainFrameTriplet(config, *split, signature_data, out);
  }
  if (objective != "pair") {
    return Fail(tool, absl::InvalidArgumentError(absl::StrCat(
                          "--objective must be pair or frame-triplet, got '", objective, "'")));
  }
  srn::tools::ProgressBar bar;
  srn::TrainCallbacks callbacks;
  callbacks.cancel = &g_cancel;
  callbacks.on_step = [&](int epoch, int step, int steps) {
    if (step % 10 == 0 || step == steps) bar.Update(absl::StrCat("epoch ", epoch), step, steps);
  };
  callbacks.on_epoch = [&](const srn::EpochReport& r) {
    bar.Clear();
    std::cerr << absl::StrFormat("epoch %3d  loss %.4f  val_auc %.4f  lr %.2e  %5.1fs%s\n", r.epoch,
                                 r.train_loss, r.val_auc, r.learning_rate, r.seconds,
                                 r.improved ? "  *" : "");
  };
  std::cerr << absl::StrFormat("training %s (window %d) with %d threads\n",
                               config.arch.FamilyName(), config.window,
                               o.threads > 0 ? o.threads : srn::DefaultThreads());
  absl::StatusOr<srn::TrainedModel> trained =
      srn::TrainModel(split->train, split->validation, config, callbacks);
  bar.Clear();
  if (!trained.ok()) return Fail(tool, trained.status());
  if (trained->result.cancelled) {
    if (trained->result.best_epoch == 0) {
      return Fail(tool,
                  absl::CancelledError("cancelled before the first epoch ended; nothing written"));
    }
    std::cerr << "cancelled; saving the best model so far (no evaluation)\n";
  }

  if (absl::Status s = srn::SaveModel(*trained->model, out); !s.ok()) return Fail(tool, s);
  std::cerr << absl::StrFormat(
      "wrote %s (%s, best validation AUC %.4f at epoch %d, fingerprint %s)\n", out,
      trained->model->architecture().ToString(), trained->result.best_val_auc,
      trained->result.best_epoch, srn::ModelFingerprint(*trained->model));

  if (absl::GetFlag(FLAGS_eval) && !trained->result.cancelled && !split->test.examples.empty()) {
    srn::EvalOptions eval;
    eval.seed = o.seed;
    eval.threads = o.threads;
    eval.oneshot_draws = absl::GetFlag(FLAGS_draws);
    eval.want_oneshot = *protocol != srn::Protocol::kWithinDomain;
    absl::StatusOr<srn::EvalResult> result = srn::EvaluateModel(*trained->model, split->test, eval);
    if (!result.ok()) return Fail(tool, result.status());
    std::string name = absl::GetFlag(FLAGS_name);
    if (name.empty()) name = trained->model->architecture().FamilyName();
    std::cout << srn::ResultLine(*protocol, dataset, name, *result, signature_data)
              << std::endl;
  }
  return 0;
}
