#include "server/prepared_references.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "model/data/series.h"
#include "server/subject_index.h"

namespace srn {
namespace {

std::shared_ptr<const PreparedReferences> OfFloats(int floats) {
  auto prepared = std::make_shared<PreparedReferences>();
  prepared->states.emplace_back(floats, 1);
  return prepared;
}

std::shared_ptr<const SubjectEntry> Entry(const std::string& id) {
  auto entry = std::make_shared<SubjectEntry>();
  entry->id = id;
  return entry;
}

TEST(SpreadsTest, RoundTripUnderTheirTagOnly) {
  const ReferenceSpreads spreads{0.123456789012345678, 7.5e-3};
  const std::string stored = EncodeSpreads("model-a options", spreads);
  const std::optional<ReferenceSpreads> back = DecodeSpreads(stored, "model-a options");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, spreads);  // bit for bit
  EXPECT_FALSE(DecodeSpreads(stored, "model-b options").has_value());
  EXPECT_FALSE(DecodeSpreads("", "model-a options").has_value());
}

TEST(SpreadsTest, UnreadableOrUnusableValuesAreDerivedAgain) {
  const std::string tag = "t";
  for (const std::string bad :
       {"spreads-v1\nt\n1", "spreads-v1\nt\n1 x", "spreads-v2\nt\n1 1", "spreads-v1\nt\n0 1",
        "spreads-v1\nt\n1 -2", "spreads-v1\nt\nnan 1", "spreads-v1\nt\n1 inf",
        "spreads-v1\nt\n1 1\n", "garbage"}) {
    EXPECT_FALSE(DecodeSpreads(bad, tag).has_value()) << bad;
  }
  EXPECT_TRUE(DecodeSpreads("spreads-v1\nt\n1 2", tag).has_value());
}

TEST(PreparedReferenceCacheTest, KeepsTheMostRecentlyUsedWithinItsBytes) {
  PreparedReferenceCache cache(3 * 100 * sizeof(float));
  const auto a = Entry("a"), b = Entry("b"), c = Entry("c"), d = Entry("d");
  EXPECT_EQ(cache.Find(a), nullptr);
  cache.Insert(a, OfFloats(100));
  cache.Insert(b, OfFloats(100));
  cache.Insert(c, OfFloats(100));
  EXPECT_EQ(cache.bytes(), 300 * sizeof(float));
  ASSERT_NE(cache.Find(a), nullptr);  // a becomes the most recent; b the least
  cache.Insert(d, OfFloats(100));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Find(b), nullptr);
  EXPECT_NE(cache.Find(a), nullptr);
  EXPECT_NE(cache.Find(c), nullptr);
  EXPECT_NE(cache.Find(d), nullptr);
  // Replacing a value frees the old one's bytes.
  cache.Insert(a, OfFloats(50));
  EXPECT_EQ(cache.bytes(), 250 * sizeof(float));
  // One larger than everything is not kept, and evicts nothing.
  cache.Insert(b, OfFloats(301));
  EXPECT_EQ(cache.Find(b), nullptr);
  EXPECT_EQ(cache.size(), 3u);
  cache.Erase(a);
  EXPECT_EQ(cache.Find(a), nullptr);
  EXPECT_EQ(cache.bytes(), 200 * sizeof(float));
  cache.Erase(a);  // not kept: nothing happens
  EXPECT_EQ(cache.size(), 2u);
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(PreparedReferenceCacheTest, AReplacedEntryNeverLendsItsValueToANewOne) {
  PreparedReferenceCache cache(1 << 20);
  for (int i = 0; i < 100; ++i) {
    auto entry = Entry("s");
    EXPECT_EQ(cache.Find(entry), nullptr) << i;  // never the previous iteration's value
    cache.Insert(entry, OfFloats(10));
    EXPECT_NE(cache.Find(entry), nullptr);
  }
}

TEST(PreparedReferenceCacheTest, ZeroCapacityKeepsNothing) {
  PreparedReferenceCache cache(0);
  const auto a = Entry("a");
  cache.Insert(a, OfFloats(1));
  EXPECT_EQ(cache.Find(a), nullptr);
  EXPECT_EQ(cache.bytes(), 0u);
}

}  // namespace
}  // namespace srn
