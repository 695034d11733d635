#include "chain/types.h"

#include <gtest/gtest.h>

namespace mchain {
namespace {

TEST(Hex, RoundTripAndRejects) {
  Bytes raw{0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(to_hex(raw), "0001abff");
  EXPECT_EQ(from_hex("0001ABff"), raw);
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("zz"));
  EXPECT_EQ(from_hex(""), Bytes{});
}

TEST(Uuid, ParsesCanonicalForm) {
  auto id = Uuid::parse("6F1C2E9A-0b7d-4c3e-9f10-2a3b4c5d6e7f");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->to_string(), "6f1c2e9a-0b7d-4c3e-9f10-2a3b4c5d6e7f");
  EXPECT_FALSE(id->is_nil());
  EXPECT_TRUE(Uuid{}.is_nil());
}

TEST(Uuid, RejectsMalformed) {
  EXPECT_FALSE(Uuid::parse(""));
  EXPECT_FALSE(Uuid::parse("6f1c2e9a0b7d4c3e9f102a3b4c5d6e7f"));      // no dashes
  EXPECT_FALSE(Uuid::parse("6f1c2e9a-0b7d-4c3e-9f10-2a3b4c5d6e7"));   // short
  EXPECT_FALSE(Uuid::parse("6f1c2e9a-0b7d-4c3e-9f10-2a3b4c5d6e7g"));  // not hex
  EXPECT_FALSE(Uuid::parse("6f1c2e9a00b7d-4c3e-9f10-2a3b4c5d6e7f"));  // dash misplaced
}

TEST(Uuid, RandomIsVersion4) {
  Uuid a = Uuid::random();
  Uuid b = Uuid::random();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.bytes[6] >> 4, 4);
  EXPECT_EQ(a.bytes[8] & 0xc0, 0x80);
  EXPECT_EQ(Uuid::parse(a.to_string()), a);
}

TEST(Time, FormatsUtcWithMicroseconds) {
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_time(1'700'000'000'123'456), "2023-11-14T22:13:20.123456Z");
  EXPECT_GT(now_us(), 1'700'000'000'000'000u);
}

}  // namespace
}  // namespace mchain
