#include "server/subject_index.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <queue>

#include "model/nn/parallel.h"

namespace srn {
namespace {

// Rows per scan block: big enough for efficient matrix-vector products, small enough that the
// copy a write makes of the block it touches stays cheap.
constexpr int kBlockRows = 1024;
// Below this many rows a single thread scans faster than two.
constexpr int64_t kParallelRows = 32768;

}  // namespace

// A subject's consecutive rows inside one block.
struct Run {
  std::shared_ptr<const SubjectEntry> entry;
  int begin = 0;
  int rows = 0;
  bool alive = true;
};

struct SubjectIndex::Block {
  RowMatrix embeddings;  // kBlockRows (or more, for one huge subject) x dims; `used` rows filled
  int used = 0;
  std::vector<Run> runs;
};

struct SubjectIndex::Scan {
  int dims = 0;
  std::vector<std::shared_ptr<const Block>> blocks;
  int64_t rows = 0;       // filled rows, dead or alive
  int64_t dead_rows = 0;  // rows of replaced or removed subjects, reclaimed by compaction
};

std::shared_ptr<const SubjectIndex::Scan> SubjectIndex::BuildScan(
    int dims, const absl::btree_map<std::string, std::shared_ptr<const SubjectEntry>>& subjects,
    absl::flat_hash_map<std::string, Location>* locations) {
  auto scan = std::make_shared<Scan>();
  scan->dims = dims;
  locations->clear();
  std::shared_ptr<Block> block;
  for (const auto& [id, entry] : subjects) {
    const int rows = entry->references();
    if (block == nullptr || block->used + rows > block->embeddings.rows()) {
      if (block != nullptr) scan->blocks.push_back(std::move(block));
      block = std::make_shared<Block>();
      block->embeddings.resize(std::max(kBlockRows, rows), dims);
    }
    block->embeddings.middleRows(block->used, rows) = entry->embeddings;
    block->runs.push_back(Run{entry, block->used, rows, true});
    (*locations)[id] =
        Location{static_cast<int>(scan->blocks.size()), static_cast<int>(block->runs.size()) - 1};
    block->used += rows;
    scan->rows += rows;
  }
  if (block != nullptr) scan->blocks.push_back(std::move(block));
  return scan;
}

SubjectIndex::SubjectIndex(std::shared_ptr<const ServingModel> model) {
  Reset(std::move(model), {});
}

std::shared_ptr<const ServingModel> SubjectIndex::model() const {
  ReaderMutexLock lock(&mu_);
  return model_;
}

SubjectIndex::View SubjectIndex::Lookup(const std::string& id) const {
  ReaderMutexLock lock(&mu_);
  View view;
  view.model = model_;
  auto it = subjects_.find(id);
  if (it != subjects_.end()) view.subject = it->second;
  return view;
}

void SubjectIndex::Reset(std::shared_ptr<const ServingModel> model,
                         std::vector<std::shared_ptr<const SubjectEntry>> entries) {
  MutexLock write(&writer_mu_);
  absl::btree_map<std::string, std::shared_ptr<const SubjectEntry>> subjects;
  int64_t references = 0;
  for (auto& e : entries) {
    references += e->references();
    subjects[e->id] = std::move(e);
  }
  std::shared_ptr<const Scan> scan =
      BuildScan(model->model->embedding_dims(), subjects, &locations_);
  MutexLock lock(&mu_);
  model_ = std::move(model);
  subjects_.swap(subjects);
  scan_ = std::move(scan);
  references_ = references;
}

void SubjectIndex::Upsert(std::shared_ptr<const SubjectEntry> entry) {
  MutexLock write(&writer_mu_);
  std::shared_ptr<const Scan> old_scan;
  std::shared_ptr<const SubjectEntry> previous;
  {
    ReaderMutexLock lock(&mu_);
    old_scan = scan_;
    auto it = subjects_.find(entry->id);
    if (it != subjects_.end()) previous = it->second;
  }
  // Build the next scan off to the side: copy the block list, copy-on-write the blocks touched.
  auto scan = std::make_shared<Scan>(*old_scan);
  if (auto loc = locations_.find(entry->id); loc != locations_.end()) {
    auto block = std::make_shared<Block>(*scan->blocks[loc->second.block]);
    Run& run = block->runs[loc->second.run];
    run.alive = false;
    run.entry = nullptr;
    scan->dead_rows += run.rows;
    scan->blocks[loc->second.block] = std::move(block);
  }
  const int rows = entry->references();
  std::shared_ptr<Block> last;
  if (!scan->blocks.empty() &&
      scan->blocks.back()->used + rows <= scan->blocks.back()->embeddings.rows()) {
    last = std::make_shared<Block>(*scan->blocks.back());
    scan->blocks.pop_back();
  } else {
    last = std::make_shared<Block>();
    last->embeddings.resize(std::max(kBlockRows, rows), scan->dims);
  }
  last->embeddings.middleRows(last->used, rows) = entry->embeddings;
  last->runs.push_back(Run{entry, last->used, rows, true});
  last->used += rows;
  scan->rows += rows;
  locations_[entry->id] =
      Location{static_cast<int>(scan->blocks.size()), static_cast<int>(last->runs.size()) - 1};
  scan->blocks.push_back(std::move(last));

  const bool compact = scan->dead_rows > kBlockRows && scan->dead_rows * 2 > scan->rows;
  {
    MutexLock lock(&mu_);
    references_ += rows - (previous ? previous->references() : 0);
    subjects_[entry->id] = std::move(entry);
    scan_ = std::move(scan);
  }
  if (compact) Compact();
}

void SubjectIndex::Compact() {
  // Linear in the index, so it runs only once half of the scan is garbage. Building under a
  // shared lock lets readers carry on; the caller holds writer_mu_, so no writer interleaves.
  std::shared_ptr<const Scan> scan;
  {
    ReaderMutexLock lock(&mu_);
    scan = BuildScan(scan_->dims, subjects_, &locations_);
  }
  MutexLock lock(&mu_);
  scan_ = std::move(scan);
}

bool SubjectIndex::Remove(const std::string& id) {
  MutexLock write(&writer_mu_);
  auto loc = locations_.find(id);
  if (loc == locations_.end()) return false;
  std::shared_ptr<const Scan> old_scan;
  {
    ReaderMutexLock lock(&mu_);
    old_scan = scan_;
  }
  auto scan = std::make_shared<Scan>(*old_scan);
  auto block = std::make_shared<Block>(*scan->blocks[loc->second.block]);
  Run& run = block->runs[loc->second.run];
  run.alive = false;
  run.entry = nullptr;
  scan->dead_rows += run.rows;
  scan->blocks[loc->second.block] = std::move(block);
  locations_.erase(loc);

  const bool compact = scan->dead_rows > kBlockRows && scan->dead_rows * 2 > scan->rows;
  {
    MutexLock lock(&mu_);
    auto it = subjects_.find(id);
    if (it != subjects_.end()) {
      references_ -= it->second->references();
      subjects_.erase(it);
    }
    scan_ = std::move(scan);
  }
  if (compact) Compact();
  return true;
}

std::vector<IdentifyCandidate> SubjectIndex::Identify(const ServingModel& model, const float* query,
                                                      int top_k, ReferenceFusion rule, int fusion_k,
                                                      float threshold, int threads, bool* stale,
                                                      ScanScore scan_score) const {
  std::shared_ptr<const Scan> scan;
  {
    ReaderMutexLock lock(&mu_);
    *stale = model_->id != model.id;
    if (*stale) return {};
    scan = scan_;
  }
  const SimilarityModel& m = *model.model;

  auto worse = [](const IdentifyCandidate& a, const IdentifyCandidate& b) {
    return a.score > b.score;
  };
  using Heap =
      std::priority_queue<IdentifyCandidate, std::vector<IdentifyCandidate>, decltype(worse)>;
  const int num_blocks = static_cast<int>(scan->blocks.size());
  if (scan->rows - scan->dead_rows < kParallelRows) threads = 1;
  threads = std::max(1, std::min(threads, num_blocks));
  std::vector<std::vector<IdentifyCandidate>> partial(threads);
  ParallelFor(num_blocks, threads, [&](int begin, int end, int worker) {
    Heap heap(worse);
    std::vector<float> block_scores;
    std::vector<double> sims;
    for (int b = begin; b < end; ++b) {
      const Block& block = *scan->blocks[b];
      if (block.used == 0) continue;
      block_scores.resize(block.used);
      if (scan_score == ScanScore::kModel) {
        m.ScoreRows(query, block.embeddings.topRows(block.used), block_scores.data());
      } else {
        const auto rows = block.embeddings.topRows(block.used);
        const Eigen::Map<const Eigen::VectorXf> q(query, rows.cols());
        const Eigen::VectorXf dots = rows * q;
        const Eigen::VectorXf norms = rows.rowwise().squaredNorm();
        const float q_norm = q.squaredNorm();
        for (int i = 0; i < block.used; ++i) {
          block_scores[i] = -std::sqrt(std::max(0.0f, q_norm - 2 * dots[i] + norms[i]));
        }
      }
      for (const Run& run : block.runs) {
        if (!run.alive) continue;
        sims.assign(block_scores.begin() + run.begin, block_scores.begin() + run.begin + run.rows);
        const float score = static_cast<float>(FuseReferenceScores(sims, rule, fusion_k));
        // A score that is not a number (embeddings stored by a server that let an overflow
        // through) never qualifies, whatever the threshold.
        if (!(score >= threshold)) continue;
        if (static_cast<int>(heap.size()) < top_k) {
          heap.push({run.entry, score});
        } else if (score > heap.top().score) {
          heap.pop();
          heap.push({run.entry, score});
        }
      }
    }
    while (!heap.empty()) {
      partial[worker].push_back(heap.top());
      heap.pop();
    }
  });
  std::vector<IdentifyCandidate> all;
  for (auto& p : partial) all.insert(all.end(), p.begin(), p.end());
  std::sort(all.begin(), all.end(), [](const IdentifyCandidate& a, const IdentifyCandidate& b) {
    return a.score != b.score ? a.score > b.score : a.subject->id < b.subject->id;
  });
  if (static_cast<int>(all.size()) > top_k) all.resize(top_k);
  return all;
}

std::vector<std::shared_ptr<const SubjectEntry>> SubjectIndex::List(const std::string& after,
                                                                    int limit) const {
  std::vector<std::shared_ptr<const SubjectEntry>> out;
  ReaderMutexLock lock(&mu_);
  for (auto it = subjects_.upper_bound(after);
       it != subjects_.end() && static_cast<int>(out.size()) < limit; ++it) {
    out.push_back(it->second);
  }
  return out;
}

int64_t SubjectIndex::subjects() const {
  ReaderMutexLock lock(&mu_);
  return static_cast<int64_t>(subjects_.size());
}

int64_t SubjectIndex::references() const {
  ReaderMutexLock lock(&mu_);
  return references_;
}

}  // namespace srn
