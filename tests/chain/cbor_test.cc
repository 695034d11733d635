#include "chain/encoding/cbor.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mchain::cbor {
namespace {

using mchain::testing::hex;

// RFC 8949 Appendix A examples for the types we use.
TEST(CborWriter, MatchesRfc8949Examples) {
  struct Case {
    std::uint64_t value;
    const char* encoding;
  };
  for (const Case& c : {Case{0, "00"}, Case{1, "01"}, Case{10, "0a"}, Case{23, "17"},
                        Case{24, "1818"}, Case{25, "1819"}, Case{100, "1864"}, Case{1000, "1903e8"},
                        Case{1000000, "1a000f4240"}, Case{1000000000000, "1b000000e8d4a51000"},
                        Case{18446744073709551615u, "1bffffffffffffffff"}}) {
    EXPECT_EQ(to_hex(Writer().uint(c.value).data()), c.encoding) << c.value;
  }
  EXPECT_EQ(to_hex(Writer().bytes(hex("01020304")).data()), "4401020304");
  EXPECT_EQ(to_hex(Writer().bytes({}).data()), "40");
  EXPECT_EQ(to_hex(Writer().text("IETF").data()), "6449455446");
  EXPECT_EQ(to_hex(Writer().text("\u00fc").data()), "62c3bc");
  EXPECT_EQ(to_hex(Writer().array(3).uint(1).uint(2).uint(3).data()), "83010203");
  EXPECT_EQ(to_hex(Writer().array(2).uint(1).array(2).uint(2).uint(3).data()), "8201820203");
}

TEST(CborReader, ReadsWhatWriterWrites) {
  Writer w;
  w.array(4).uint(300).bytes(hex("aabb")).text("node-1").array(0);
  Reader r(w.data());
  EXPECT_EQ(r.array("top", 10), 4u);
  EXPECT_EQ(r.uint("n"), 300u);
  EXPECT_EQ(to_hex(r.bytes("b", 2)), "aabb");
  EXPECT_EQ(r.text("t", 64), "node-1");
  r.array_exact("empty", 0);
  EXPECT_TRUE(r.at_end());
  EXPECT_NO_THROW(r.finish("top"));
}

// Each non-canonical or unsupported form is refused with the field's name in the message.
std::string decode_error(std::string_view input_hex, auto&& read) {
  Bytes input = hex(input_hex);
  auto result = decode(input, "top", [&](Reader& r) {
    read(r);
    return 0;
  });
  EXPECT_FALSE(result) << input_hex;
  return result ? std::string() : result.error().message;
}

TEST(CborReader, RejectsNonShortestIntegers) {
  auto read = [](Reader& r) { r.uint("field.n"); };
  EXPECT_NE(decode_error("1817", read).find("field.n: integer or length not in shortest form"),
            std::string::npos);
  decode_error("190017", read);
  decode_error("1900ff", read);
  decode_error("1a0000ffff", read);
  decode_error("1b00000000ffffffff", read);
}

TEST(CborReader, RejectsNonShortestLengths) {
  decode_error("5801aa", [](Reader& r) { r.bytes("b", 10); });
  decode_error("780161", [](Reader& r) { r.text("t", 10); });
  decode_error("980101", [](Reader& r) { r.array("a", 10); });
}

TEST(CborReader, RejectsIndefiniteLengthsAndOtherTypes) {
  decode_error("9f01ff", [](Reader& r) { r.array("a", 10); });    // indefinite array
  decode_error("5f4101ff", [](Reader& r) { r.bytes("b", 10); });  // indefinite bytes
  decode_error("20", [](Reader& r) { r.uint("n"); });             // negative integer
  decode_error("a0", [](Reader& r) { r.array("a", 1); });         // map
  decode_error("c240", [](Reader& r) { r.bytes("b", 1); });       // tag
  decode_error("f6", [](Reader& r) { r.item("any"); });           // null
  decode_error("f93c00", [](Reader& r) { r.item("any"); });       // half float
  decode_error("1c", [](Reader& r) { r.uint("n"); });             // reserved info 28
}

TEST(CborReader, RejectsWrongTypeNamingField) {
  std::string message = decode_error("4101", [](Reader& r) { r.uint("package.header.type"); });
  EXPECT_NE(message.find("package.header.type: expected unsigned integer, found byte string"),
            std::string::npos)
      << message;
}

TEST(CborReader, EnforcesSizeCaps) {
  std::string message = decode_error("43010203", [](Reader& r) { r.bytes("body", 2); });
  EXPECT_NE(message.find("body: byte string of 3 bytes exceeds the limit of 2"), std::string::npos)
      << message;
  decode_error("6461626364", [](Reader& r) { r.text("id", 3); });
  decode_error("83010203", [](Reader& r) { r.array("list", 2); });
  decode_error("0a", [](Reader& r) { r.uint("type", 4); });
  decode_error("4101", [](Reader& r) { r.bytes_exact("hash", 2); });
}

TEST(CborReader, RejectsTruncationAndTrailingBytes) {
  decode_error("", [](Reader& r) { r.uint("n"); });
  decode_error("19", [](Reader& r) { r.uint("n"); });
  decode_error("4401", [](Reader& r) { r.bytes("b", 10); });
  decode_error("6461", [](Reader& r) { r.text("t", 10); });
  std::string message = decode_error("0101", [](Reader& r) { r.uint("n"); });
  EXPECT_NE(message.find("top: 1 trailing bytes"), std::string::npos) << message;
}

TEST(CborReader, RejectsInvalidUtf8) {
  decode_error("61ff", [](Reader& r) { r.text("t", 10); });        // invalid byte
  decode_error("62c0af", [](Reader& r) { r.text("t", 10); });      // overlong '/'
  decode_error("63eda080", [](Reader& r) { r.text("t", 10); });    // surrogate D800
  decode_error("64f4908080", [](Reader& r) { r.text("t", 10); });  // above U+10FFFF
  decode_error("62e282", [](Reader& r) { r.text("t", 10); });      // truncated sequence
  Bytes ok = hex("63e282ac");                                      // U+20AC
  EXPECT_TRUE(decode(ok, "t", [](Reader& r) { return std::string(r.text("t", 10)); }));
}

TEST(CborReader, ItemReturnsWholeNestedEncoding) {
  Bytes input =
      hex("8283010203"
          "4100"
          "0a");
  Reader r(input);
  r.array_exact("outer", 2);
  EXPECT_EQ(to_hex(r.item("first")), "83010203");
  EXPECT_EQ(to_hex(r.item("second")), "4100");
  EXPECT_EQ(r.uint("after"), 10u);
}

TEST(CborReader, BoundsNesting) {
  Bytes deep(40, 0x81);
  deep.push_back(0x00);
  auto result = decode(deep, "deep", [](Reader& r) {
    r.item("nested");
    return 0;
  });
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("nesting deeper"), std::string::npos);
}

}  // namespace
}  // namespace mchain::cbor
