#include "measure/policy/policy.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>

#include "temp_dir.h"

namespace mchain::measure {
namespace {

using P = Property;

Policy must_parse(std::string_view text) {
  auto policy = parse_policy(text, "t.pol");
  EXPECT_TRUE(policy) << policy.error().message;
  return policy ? *policy : Policy{};
}

// The error message for text that must not parse.
std::string error_of(std::string_view text) {
  auto policy = parse_policy(text, "t.pol");
  if (policy) return "(parsed)";
  return policy.error().message;
}

PropertySet set_of(std::initializer_list<Property> properties) {
  PropertySet s;
  for (Property p : properties) s.add(p);
  return s;
}

// The mask of a one-rule policy "/x -> MASK;".
PropertySet mask_of(std::string_view mask, std::string_view prelude = "") {
  Policy policy = must_parse(std::string(prelude) + "/x -> " + std::string(mask) + ";");
  if (policy.rules().size() != 1) return PropertySet::all();
  return policy.rules()[0].mask;
}

bool same_rules(const Policy& a, const Policy& b) {
  if (a.rules().size() != b.rules().size() || a.stop_points() != b.stop_points()) return false;
  for (std::size_t i = 0; i < a.rules().size(); ++i) {
    const Rule& x = a.rules()[i];
    const Rule& y = b.rules()[i];
    if (x.path != y.path || x.mask != y.mask || x.name != y.name || x.severity != y.severity ||
        x.depth != y.depth) {
      return false;
    }
  }
  return true;
}

void expect_round_trip(const Policy& policy) {
  std::string text = policy.canonical_text();
  auto back = parse_policy(text, "canonical");
  ASSERT_TRUE(back) << back.error().message << "\n" << text;
  EXPECT_TRUE(same_rules(policy, *back)) << text << "\nversus\n" << back->canonical_text();
  EXPECT_EQ(back->canonical_text(), text);
  EXPECT_EQ(back->hash(), policy.hash());
}

TEST(PropertySet, BasicsAndText) {
  PropertySet s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.to_string(), "-");
  s.add(P::kSha512).add(P::kPermissions).add(P::kGrowing).add(P::kSha256);
  EXPECT_TRUE(s.has(P::kPermissions));
  EXPECT_FALSE(s.has(P::kInode));
  EXPECT_EQ(s.to_string(), "+pl+sha256+sha512");
  s.remove(P::kPermissions).remove(P::kGrowing);
  EXPECT_EQ(s.to_string(), "+sha256+sha512");
  EXPECT_EQ(PropertySet::all().to_string(), "+pinugtsdrbmcal+sha256+sha512");
  EXPECT_EQ(PropertySet::from_bits(PropertySet::all().bits()), PropertySet::all());
  PropertySet a = set_of({P::kUid, P::kGid});
  PropertySet b = set_of({P::kGid, P::kSize});
  EXPECT_EQ(a & b, set_of({P::kGid}));
  EXPECT_EQ(a | b, set_of({P::kUid, P::kGid, P::kSize}));
  EXPECT_EQ(a.without(b), set_of({P::kUid}));
}

TEST(PropertySet, CodesAndNames) {
  const std::string letters = "pinugtsdrbmcal";
  for (std::size_t i = 0; i < kPropertyCount; ++i) {
    auto p = static_cast<Property>(i);
    if (i < letters.size()) {
      EXPECT_EQ(property_code(p), letters.substr(i, 1));
    }
    EXPECT_FALSE(property_name(p).empty());
  }
  EXPECT_EQ(property_code(P::kSha256), "sha256");
  EXPECT_EQ(property_code(P::kSha512), "sha512");
  EXPECT_EQ(property_name(P::kPermissions), "permissions");
  EXPECT_EQ(property_name(P::kGrowing), "growing");
}

TEST(Mask, EveryLetterAndHash) {
  const std::string letters = "pinugtsdrbmcal";
  for (std::size_t i = 0; i < letters.size(); ++i) {
    auto p = static_cast<Property>(i);
    EXPECT_EQ(mask_of(std::string("+") + letters[i]), set_of({p})) << letters[i];
    EXPECT_EQ(mask_of(std::string(1, letters[i])), set_of({p})) << letters[i];
    EXPECT_EQ(set_of({p}).to_string(), std::string("+") + letters[i]);
  }
  EXPECT_EQ(mask_of("+sha256"), set_of({P::kSha256}));
  EXPECT_EQ(mask_of("sha512"), set_of({P::kSha512}));
  EXPECT_EQ(mask_of("+" + letters + "+sha256+sha512"), PropertySet::all());
  // A hash name may follow letters directly; "s" followed by something else is the size.
  EXPECT_EQ(mask_of("+psha256s"), set_of({P::kPermissions, P::kSha256, P::kSize}));
}

TEST(Mask, PredefinedVariables) {
  EXPECT_EQ(mask_of("$(ReadOnly)"),
            set_of({P::kPermissions, P::kInode, P::kLinks, P::kUid, P::kGid, P::kType, P::kSize,
                    P::kDevice, P::kBlocks, P::kMtime, P::kSha256}));
  EXPECT_EQ(mask_of("$(Dynamic)"), set_of({P::kPermissions, P::kInode, P::kLinks, P::kUid, P::kGid,
                                           P::kType, P::kDevice}));
  EXPECT_EQ(mask_of("$(Growing)"), set_of({P::kPermissions, P::kInode, P::kLinks, P::kUid, P::kGid,
                                           P::kType, P::kDevice, P::kGrowing}));
  EXPECT_EQ(mask_of("$(Device)"),
            set_of({P::kPermissions, P::kUid, P::kGid, P::kSize, P::kDevice, P::kRdev}));
  EXPECT_EQ(mask_of("$(IgnoreAll)"), PropertySet{});
  EXPECT_EQ(mask_of("$(IgnoreNone)"), PropertySet::all().without(set_of({P::kGrowing})));
  EXPECT_EQ(mask_of("$(ReadOnly)").to_string(), "+pinugtsdbm+sha256");
  EXPECT_EQ(mask_of("$(Dynamic)").to_string(), "+pinugtd");
  EXPECT_EQ(mask_of("$(Growing)").to_string(), "+pinugtdl");
  EXPECT_EQ(mask_of("$(Device)").to_string(), "+pugsdr");
  EXPECT_EQ(mask_of("$(IgnoreAll)").to_string(), "-");
  EXPECT_EQ(mask_of("$(IgnoreNone)").to_string(), "+pinugtsdrbmca+sha256+sha512");
}

TEST(Mask, SignsCarryOver) {
  PropertySet pin = set_of({P::kPermissions, P::kInode, P::kLinks});
  EXPECT_EQ(mask_of("+pin-ug"), pin);
  EXPECT_EQ(mask_of("pinug-ug"), pin);
  EXPECT_EQ(mask_of("+pinug -ug"), pin);
  EXPECT_EQ(mask_of("+pinugt-ug+t-t"), pin);
  EXPECT_EQ(mask_of("-p+i"), set_of({P::kInode}));
  EXPECT_EQ(mask_of("+p i n"), pin);  // white space neither ends nor resets a sign
  EXPECT_EQ(mask_of("+sha256-sha256+sha512"), set_of({P::kSha512}));
  EXPECT_EQ(mask_of("-"), PropertySet{});  // the empty mask, as to_string() writes it
  EXPECT_EQ(mask_of("$(ReadOnly) -a"), mask_of("$(ReadOnly)"));
  EXPECT_EQ(mask_of("$(ReadOnly)-m+a"),
            mask_of("$(ReadOnly)").without(set_of({P::kMtime})) | set_of({P::kAtime}));
  // Substitution is textual: ReadOnly ends in "-rlac", so a bare "i" after it removes.
  EXPECT_EQ(mask_of("$(ReadOnly) i"), mask_of("$(ReadOnly)").without(set_of({P::kInode})));
  EXPECT_EQ(mask_of("$(IgnoreNone)-sha512 # comment\n"),
            mask_of("$(IgnoreNone)").without(set_of({P::kSha512})));
}

TEST(Variables, DefinitionsAndUses) {
  // Identifiers cannot contain spaces: "MY" is followed by "DIR", not "=".
  EXPECT_EQ(error_of("MY DIR = x;"),
            "t.pol:1:4: expected '=' after 'MY' (a variable definition), found 'D'");

  Policy p = must_parse(
      "SEC_BIN = $(ReadOnly) ;\n"
      "SEC_CONFIG = $(SEC_BIN)-s+c ;  # nested use\n"
      "LOCAL = /usr/local;\n"
      "SEV = 70;\n"
      "NAME = \"local binaries\";\n"
      "HOME = /home/a user;\n"
      "$(LOCAL)/bin -> $(SEC_BIN) (rulename = $(NAME), severity = $(SEV));\n"
      "/etc -> $(SEC_CONFIG);\n"
      "\"$(HOME)/.ssh\" -> +pug;\n"
      "EMPTY = ;\n"
      "/var$(EMPTY) -> +p$(EMPTY)i;\n");
  ASSERT_EQ(p.rules().size(), 4u);
  const Rule& etc = p.rules()[0];
  EXPECT_EQ(etc.path, "/etc");
  EXPECT_EQ(etc.mask, mask_of("$(ReadOnly)").without(set_of({P::kSize})) | set_of({P::kCtime}));
  EXPECT_EQ(p.rules()[1].path, "/home/a user/.ssh");
  const Rule& bin = p.rules()[2];
  EXPECT_EQ(bin.path, "/usr/local/bin");
  EXPECT_EQ(bin.name, "local binaries");
  EXPECT_EQ(bin.severity, 70u);
  EXPECT_EQ(bin.mask, mask_of("$(ReadOnly)"));
  EXPECT_EQ(p.rules()[3].path, "/var");
  EXPECT_EQ(p.rules()[3].mask, set_of({P::kPermissions, P::kInode}));
}

TEST(Variables, Errors) {
  EXPECT_EQ(error_of("/etc -> $(Nope);"), "t.pol:1:9: undefined variable 'Nope'");
  // Defined after the use: still undefined at the use.
  EXPECT_EQ(error_of("/etc -> $(LATER);\nLATER = +p;"), "t.pol:1:9: undefined variable 'LATER'");
  EXPECT_EQ(error_of("X = $(X);"), "t.pol:1:5: undefined variable 'X'");
  EXPECT_EQ(error_of("A = +p;\n  A = +i;"), "t.pol:2:3: variable 'A' is already defined at 1:1");
  EXPECT_EQ(error_of("ReadOnly = +p;"),
            "t.pol:1:1: cannot redefine the predefined variable 'ReadOnly'");
  for (const char* name : {"Dynamic", "Growing", "Device", "IgnoreAll", "IgnoreNone"}) {
    EXPECT_NE(error_of(std::string(name) + " = +p;").find("predefined"), std::string::npos);
  }
  EXPECT_EQ(error_of("/etc -> $(1x);"),
            "t.pol:1:11: expected a variable name after '$(', found '1x'");
  EXPECT_EQ(error_of("/etc -> $();"), "t.pol:1:11: expected a variable name after '$(', found ')'");
  EXPECT_EQ(error_of("/etc -> $(ReadOnly;"),
            "t.pol:1:19: expected ')' after '$(ReadOnly', found ';'");
  EXPECT_EQ(error_of("X = +p"),
            "t.pol:1:7: expected ';' to end the definition of 'X', found end of input");
  EXPECT_EQ(error_of("X +p;"),
            "t.pol:1:3: expected '=' after 'X' (a variable definition), found '+'");
  EXPECT_EQ(error_of("X = \"abc;\n"),
            "t.pol:1:5: unterminated string: expected '\"' before end of line");
  // An error inside an expansion is reported at the "$(" that brought the text in.
  EXPECT_EQ(error_of("M = +pix;\n/a -> +s $(M);"),
            "t.pol:2:10: expected a property letter (one of pinugtsdrbmcal) or sha256 or "
            "sha512, found 'x'");
  EXPECT_EQ(error_of("D = /a/../b;\n$(D) -> +p;"),
            "t.pol:2:1: invalid path \"/a/../b\": a path must not contain '..' components");
  EXPECT_EQ(error_of("S = 2000000;\n/a -> +p (severity = $(S));"),
            "t.pol:2:22: expected a severity from 0 to 1000000, found '2000000'");
}

TEST(Variables, ValuesMayHoldQuotedSemicolonsAndHashes) {
  Policy p = must_parse("P = \"/a;b#c\"; # a comment\n$(P) -> +p;\n\"/x\\$(P)\" -> +i;");
  ASSERT_EQ(p.rules().size(), 2u);
  EXPECT_EQ(p.rules()[0].path, "/a;b#c");
  EXPECT_EQ(p.rules()[1].path, "/x$(P)");  // "\$" is a literal dollar sign
  // In a value, as in a bare path, '#' begins a comment only after white space.
  Policy q = must_parse("X = /a#b # a comment\n;\n$(X) -> +p;\n\"/y\" -> +i; #c");
  ASSERT_EQ(q.rules().size(), 2u);
  EXPECT_EQ(q.rules()[0].path, "/a#b");
}

TEST(Variables, ExpansionBombIsBounded) {
  std::string text = "A0 = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx;\n";
  for (int i = 1; i < 40; ++i) {
    std::string prev = "$(A" + std::to_string(i - 1) + ")";
    text += "A" + std::to_string(i) + " = " + prev + prev + prev + prev + ";\n";
  }
  std::string error = error_of(text);
  EXPECT_NE(error.find("variable expansions exceed 16 MiB in total"), std::string::npos) << error;
}

TEST(Attributes, DefaultsAndValues) {
  Policy p = must_parse(
      "/a -> +p;\n"
      "/b -> +p (rulename = bin, severity = 1000000, recurse = false);\n"
      "/c -> +p (recurse = 3, rulename = \"C files\");\n"
      "/d -> +p (recurse = -1, severity = 0);\n"
      "/e -> +p (recurse = true);\n"
      "/f -> +p ( recurse = 0 ) ;\n");
  ASSERT_EQ(p.rules().size(), 6u);
  const auto& r = p.rules();
  EXPECT_EQ(r[0].name, "/a");
  EXPECT_EQ(r[0].severity, 0u);
  EXPECT_EQ(r[0].depth, Rule::kUnlimited);
  EXPECT_EQ(r[0].where.line, 1u);
  EXPECT_EQ(r[0].where.column, 1u);
  EXPECT_EQ(r[1].name, "bin");
  EXPECT_EQ(r[1].severity, 1000000u);
  EXPECT_EQ(r[1].depth, 0);
  EXPECT_EQ(r[2].name, "C files");
  EXPECT_EQ(r[2].depth, 3);
  EXPECT_EQ(r[3].depth, Rule::kUnlimited);
  EXPECT_EQ(r[4].depth, Rule::kUnlimited);
  EXPECT_EQ(r[5].depth, 0);
  EXPECT_EQ(r[5].where.line, 6u);
}

TEST(Attributes, BlocksNestAndOverride) {
  Policy p = must_parse(
      "(rulename = outer, severity = 5) {\n"
      "  /a -> +p;\n"
      "  /b -> +p (severity = 7);\n"
      "  (recurse = 2) {\n"
      "    /c -> +p;\n"
      "    (rulename = inner, severity = 9) {\n"
      "      /d -> +p (rulename = own);\n"
      "      /e -> +p (recurse = true);\n"
      "      !/e/tmp;\n"
      "    }\n"
      "  }\n"
      "  V = +i;\n"
      "}\n"
      "/f -> $(V);\n");
  ASSERT_EQ(p.rules().size(), 6u);
  auto check = [&](std::size_t i, std::string_view path, std::string_view name,
                   std::uint32_t severity, std::int32_t depth) {
    const Rule& r = p.rules()[i];
    EXPECT_EQ(r.path, path);
    EXPECT_EQ(r.name, name) << path;
    EXPECT_EQ(r.severity, severity) << path;
    EXPECT_EQ(r.depth, depth) << path;
  };
  check(0, "/a", "outer", 5, Rule::kUnlimited);
  check(1, "/b", "outer", 7, Rule::kUnlimited);
  check(2, "/c", "outer", 5, 2);
  check(3, "/d", "own", 9, 2);
  check(4, "/e", "inner", 9, Rule::kUnlimited);
  check(5, "/f", "/f", 0, Rule::kUnlimited);  // outside every block: plain defaults
  EXPECT_EQ(p.rules()[5].mask, set_of({P::kInode}));
  EXPECT_EQ(p.stop_points(), std::vector<std::string>{"/e/tmp"});
}

TEST(Attributes, Errors) {
  EXPECT_EQ(error_of("/etc -> +p (emailto = x);"),
            "t.pol:1:13: unknown attribute 'emailto': expected rulename, severity or recurse");
  EXPECT_EQ(error_of("/etc -> +p (severity = 1, severity = 2);"),
            "t.pol:1:27: duplicate attribute 'severity', first at 1:13");
  EXPECT_EQ(error_of("/etc -> +p ();"),
            "t.pol:1:13: expected an attribute name (rulename, severity or recurse), found ')'");
  EXPECT_EQ(error_of("/etc -> +p (severity 1);"),
            "t.pol:1:22: expected '=' after 'severity', found '1'");
  EXPECT_EQ(error_of("/etc -> +p (severity = 1000001);"),
            "t.pol:1:24: expected a severity from 0 to 1000000, found '1000001'");
  EXPECT_EQ(error_of("/etc -> +p (severity = -1);"),
            "t.pol:1:24: expected a severity from 0 to 1000000, found '-1'");
  EXPECT_EQ(error_of("/etc -> +p (severity = high);"),
            "t.pol:1:24: expected a severity from 0 to 1000000, found 'high'");
  EXPECT_EQ(error_of("/etc -> +p (severity = );"),
            "t.pol:1:24: expected a severity from 0 to 1000000, found ')'");
  EXPECT_EQ(error_of("/etc -> +p (recurse = -2);"),
            "t.pol:1:23: expected true, false or a depth of 0 or more for recurse, found '-2'");
  EXPECT_EQ(error_of("/etc -> +p (recurse = yes);"),
            "t.pol:1:23: expected true, false or a depth of 0 or more for recurse, found 'yes'");
  EXPECT_EQ(error_of("/etc -> +p (recurse = 99999999999);"),
            "t.pol:1:23: expected true, false or a depth of 0 or more for recurse, "
            "found '99999999999'");
  EXPECT_EQ(error_of("/etc -> +p (rulename = \"\");"),
            "t.pol:1:24: invalid rule name \"\": a rule name must not be empty");
  EXPECT_EQ(error_of("/etc -> +p (rulename = ,);"),
            "t.pol:1:24: expected a rule name (a word or a quoted string), found ','");
  EXPECT_EQ(error_of("/etc -> +p (rulename = a b);"),
            "t.pol:1:26: expected ',' or ')' in the attribute list, found 'b'");
  EXPECT_EQ(error_of("/etc -> +p (recurse = 1)"),
            "t.pol:1:25: expected ';' at the end of the rule, found end of input");
  EXPECT_EQ(error_of("(severity = 1) /etc -> +p;"),
            "t.pol:1:16: expected '{' after the attribute list of a block, found '/'");
  EXPECT_EQ(error_of("(severity = 1) {\n/etc -> +p;\n"),
            "t.pol:3:1: expected '}' to close the block opened at 1:16, found end of input");
  EXPECT_EQ(error_of("/etc -> +p;\n}"),
            "t.pol:2:1: expected a rule, a stop point, a variable definition or an attribute "
            "block, found '}'");
  std::string deep;
  for (int i = 0; i < 70; ++i) deep += "(severity = 1) {";
  EXPECT_EQ(error_of(deep), "t.pol:1:1025: attribute blocks nested more than 64 deep");
}

TEST(Paths, QuotedAndBare) {
  Policy q = must_parse(
      "\"/my dir/a\\\"b\\\\c\" -> +p;\n"
      "/odd-but+fine_1.2 -> +p;\n"
      "/a#b -> +i;  # '#' in a bare path is part of it; after white space, a comment\n"
      "/ -> +t;\n"
      "\"/quoted\" -> +s;\n");
  ASSERT_EQ(q.rules().size(), 5u);
  EXPECT_EQ(q.rules()[0].path, "/");
  EXPECT_EQ(q.rules()[1].path, "/a#b");
  EXPECT_EQ(q.rules()[2].path, "/my dir/a\"b\\c");
  EXPECT_EQ(q.rules()[3].path, "/odd-but+fine_1.2");
  EXPECT_EQ(q.rules()[4].path, "/quoted");
  // ';' '(' ')' '{' '}' end a bare path; such paths need quotes.
  EXPECT_EQ(error_of("/semi(colon -> +p;"), "t.pol:1:6: expected '->' after the path, found '('");
}

TEST(Paths, NormalisationIsRequired) {
  struct Case {
    const char* path;
    const char* problem;
  };
  for (const Case& c : {
           Case{"\"etc\"", "a path must be absolute (start with '/')"},
           Case{"\"\"", "a path must not be empty"},
           Case{"/etc/", "a path must not end with '/'"},
           Case{"//etc", "a path must not contain '//'"},
           Case{"/etc//ssh", "a path must not contain '//'"},
           Case{"/etc/./ssh", "a path must not contain '.' components"},
           Case{"/.", "a path must not contain '.' components"},
           Case{"/etc/..", "a path must not contain '..' components"},
           Case{"/../etc", "a path must not contain '..' components"},
       }) {
    std::string text = std::string(c.path) + " -> +p;";
    std::string path = c.path;
    if (path.front() == '"') path = path.substr(1, path.size() - 2);
    EXPECT_EQ(error_of(text), "t.pol:1:1: invalid path \"" + path + "\": " + c.problem) << text;
    EXPECT_EQ(error_of("!" + text), "t.pol:1:2: invalid path \"" + path + "\": " + c.problem)
        << text;
  }
  EXPECT_EQ(error_of("\"/a\tb\" -> +p;"),
            "t.pol:1:1: invalid path \"/a\tb\": a path must not contain control characters");
  EXPECT_EQ(error_of("/" + std::string(4096, 'a') + " -> +p;").substr(0, 28),
            "t.pol:1:1: invalid path \"/aa");
  // Dotted names that are not "." or ".." are ordinary components.
  Policy p = must_parse("/etc/.ssh -> +p;\n/etc/..x -> +p;\n/etc/... -> +p;");
  EXPECT_EQ(p.rules().size(), 3u);
}

TEST(Errors, ExactLocations) {
  EXPECT_EQ(error_of("/etc -> +pinx;"),
            "t.pol:1:13: expected a property letter (one of pinugtsdrbmcal) or sha256 or sha512, "
            "found 'x'");
  EXPECT_EQ(error_of("/etc -> +p"),
            "t.pol:1:11: expected '(' or ';' after the property mask, found end of input");
  EXPECT_EQ(error_of("/etc -> +p;\n\n  /etc -> +i;"),
            "t.pol:3:3: duplicate rule for \"/etc\", first at 1:1");
  EXPECT_EQ(error_of("# header\n/etc/../x -> +p;"),
            "t.pol:2:1: invalid path \"/etc/../x\": a path must not contain '..' components");
  EXPECT_EQ(error_of("/etc +p;"), "t.pol:1:6: expected '->' after the path, found '+'");
  EXPECT_EQ(error_of("/etc -+p;"),
            "t.pol:1:7: expected '->' after the path, found '-' followed by '+'");
  EXPECT_EQ(error_of("/etc -> ;"),
            "t.pol:1:9: expected a property mask (e.g. +pinug or $(ReadOnly)), found ';'");
  EXPECT_EQ(error_of("/etc -> +;"), "t.pol:1:10: expected a property after '+', found ';'");
  EXPECT_EQ(error_of("/etc -> +-p;"), "t.pol:1:10: expected a property after '+', found '-'");
  EXPECT_EQ(error_of("/etc -> +p-;"), "t.pol:1:12: expected a property after '-', found ';'");
  EXPECT_EQ(error_of("/etc -> +pS;"),
            "t.pol:1:11: expected a property letter (one of pinugtsdrbmcal) or sha256 or sha512, "
            "found 'S'");
  EXPECT_EQ(error_of("/etc -> +p1;"),
            "t.pol:1:11: expected a property letter (one of pinugtsdrbmcal) or sha256 or sha512, "
            "found '1'");
  EXPECT_EQ(error_of("/etc -> +psha1;"), "t.pol:1:11: expected sha256 or sha512, found 'sha1'");
  EXPECT_EQ(error_of("/etc -> +p *;"),
            "t.pol:1:12: expected '(' or ';' after the property mask, found '*'");
  EXPECT_EQ(error_of("/etc\n  -> +p\n  (severity = 1)\n  x;"),
            "t.pol:4:3: expected ';' at the end of the rule, found 'x'");
  EXPECT_EQ(error_of("*"),
            "t.pol:1:1: expected a rule, a stop point, a variable definition or "
            "an attribute block, found '*'");
  EXPECT_EQ(error_of("!etc;"),
            "t.pol:1:2: expected a path (starting with '/', or in double quotes), found 'e'");
  EXPECT_EQ(error_of("!/etc"), "t.pol:1:6: expected ';' after the stop point, found end of input");
  EXPECT_EQ(error_of("!/tmp;\n!/tmp;"), "t.pol:2:1: duplicate stop point \"/tmp\", first at 1:1");
  EXPECT_EQ(error_of("/tmp -> +p;\n!/tmp;"),
            "t.pol:2:1: stop point \"/tmp\" is also a rule path (rule at 1:1)");
  EXPECT_EQ(error_of("!/tmp;\n/tmp -> +p;"),
            "t.pol:2:1: rule path \"/tmp\" is also a stop point (at 1:1)");
  EXPECT_EQ(error_of("\"/etc -> +p;"),
            "t.pol:1:1: unterminated string: expected '\"' before end of input");
  EXPECT_EQ(error_of("\"/etc\\n\" -> +p;"),
            "t.pol:1:6: expected '\\\"', '\\\\' or '\\$' after a backslash, found 'n'");
  EXPECT_EQ(error_of("/etc -> +p; /tmp -> +p (rulename = \"a\n\");"),
            "t.pol:1:36: unterminated string: expected '\"' before end of line");
  // Columns count bytes; tabs are one column.
  EXPECT_EQ(error_of("\t/etc -> +q;"),
            "t.pol:1:11: expected a property letter (one of pinugtsdrbmcal) or sha256 or sha512, "
            "found 'q'");
  EXPECT_EQ(error_of("/etc -> +p;\n\x01"),
            "t.pol:2:1: expected a rule, a stop point, a variable "
            "definition or an attribute block, found byte 0x01");
  auto other_name = parse_policy("/etc -> +x;", "/etc/mchain/site.pol");
  ASSERT_FALSE(other_name);
  EXPECT_EQ(other_name.error().message.substr(0, 27), "/etc/mchain/site.pol:1:10: ");
}

TEST(Errors, Limits) {
  std::string big(std::size_t{1} << 20, ' ');
  EXPECT_TRUE(parse_policy(big));  // exactly 1 MiB of white space: an empty policy
  big += ' ';
  EXPECT_EQ(error_of(big), "t.pol: policy is 1048577 bytes; the limit is 1 MiB");

  std::string many;
  const std::string digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (std::size_t i = 0; i <= 100000; ++i) {
    many += {'/', digits[i / 3844], digits[i / 62 % 62], digits[i % 62]};
    many += " ->p;\n";
  }
  ASSERT_LE(many.size(), std::size_t{1} << 20);
  EXPECT_EQ(error_of(many), "t.pol:100001:1: too many rules (at most 100000)");
}

TEST(GoverningRule, LongestRootDepthAndStops) {
  Policy p = must_parse(
      "/ -> +p (recurse = 1, rulename = root);\n"
      "/etc -> $(ReadOnly) (rulename = etc);\n"
      "/etc/ssh -> +pinugsm+sha512 (recurse = 1, rulename = ssh);\n"
      "/etc/ssh/keys -> +p (recurse = false, rulename = keys);\n"
      "/var/log -> $(Growing) (recurse = 2, rulename = logs);\n"
      "!/etc/mtab;\n"
      "!/var/log/journal;\n"
      "!/etc/ssh/keys/tmp;\n");
  auto name = [&](std::string_view path) -> std::string {
    const Rule* r = p.governing_rule(path);
    return r ? r->name : "(none)";
  };
  EXPECT_EQ(name("/"), "root");
  EXPECT_EQ(name("/bin"), "root");       // one level below "/"
  EXPECT_EQ(name("/bin/ls"), "(none)");  // two levels: beyond recurse = 1
  EXPECT_EQ(name("/etc"), "etc");
  EXPECT_EQ(name("/etc/passwd"), "etc");
  EXPECT_EQ(name("/etc/a/b/c/d"), "etc");  // unlimited
  EXPECT_EQ(name("/etcx"), "root");        // shares a prefix, is not a descendant
  EXPECT_EQ(name("/etc-old"), "root");
  EXPECT_EQ(name("/etcx/passwd"), "(none)");
  EXPECT_EQ(name("/etc/ssh"), "ssh");
  EXPECT_EQ(name("/etc/sshd"), "etc");
  EXPECT_EQ(name("/etc/ssh/sshd_config"), "ssh");
  // The more specific rule cuts its subtree out: beyond its depth nothing governs.
  EXPECT_EQ(name("/etc/ssh/moduli.d/x"), "(none)");
  EXPECT_EQ(name("/etc/ssh/keys"), "keys");
  EXPECT_EQ(name("/etc/ssh/keys/host_key"), "(none)");  // recurse = false
  EXPECT_EQ(name("/etc/mtab"), "(none)");
  EXPECT_EQ(name("/etc/mtab/under"), "(none)");
  EXPECT_EQ(name("/etc/mtabx"), "etc");
  EXPECT_EQ(name("/var"), "root");
  EXPECT_EQ(name("/var/log"), "logs");
  EXPECT_EQ(name("/var/log/a/b"), "logs");
  EXPECT_EQ(name("/var/log/a/b/c"), "(none)");
  EXPECT_EQ(name("/var/log/journal"), "(none)");
  EXPECT_EQ(name("/var/log/journal/x/y"), "(none)");
  EXPECT_EQ(name("relative"), "(none)");
  EXPECT_EQ(name(""), "(none)");

  EXPECT_TRUE(p.is_stopped("/etc/mtab"));
  EXPECT_TRUE(p.is_stopped("/etc/mtab/x"));
  EXPECT_TRUE(p.is_stopped("/etc/ssh/keys/tmp"));
  EXPECT_FALSE(p.is_stopped("/etc/mtabx"));
  EXPECT_FALSE(p.is_stopped("/etc"));
  EXPECT_FALSE(p.is_stopped("/"));
  EXPECT_FALSE(p.is_stopped(""));
}

TEST(GoverningRule, NoRulesAndStopAboveRule) {
  Policy empty = must_parse("# nothing\n");
  EXPECT_EQ(empty.governing_rule("/etc"), nullptr);
  EXPECT_FALSE(empty.is_stopped("/etc"));
  // A stop point above a rule's root stops that rule's whole tree too.
  Policy p = must_parse("!/srv;\n/srv/data -> +p;\n/ -> +i;");
  EXPECT_EQ(p.governing_rule("/srv/data/x"), nullptr);
  EXPECT_EQ(p.governing_rule("/srv"), nullptr);
  ASSERT_NE(p.governing_rule("/srvx"), nullptr);
  EXPECT_EQ(p.governing_rule("/srvx")->path, "/");
  Policy stop_root = must_parse("!/;\n/etc -> +p;");
  EXPECT_EQ(stop_root.governing_rule("/etc"), nullptr);
}

TEST(GoverningRule, ManyLookups) {
  std::vector<Rule> rules;
  for (int i = 0; i < 1000; ++i) {
    Rule r;
    r.path = "/d" + std::to_string(i);
    r.mask = PropertySet{}.add(P::kSize);
    r.depth = i % 4;
    rules.push_back(r);
  }
  auto policy = Policy::from_parts(std::move(rules), {"/d7/stop"});
  ASSERT_TRUE(policy) << policy.error().message;
  std::size_t governed = 0;
  for (int i = 0; i < 120000; ++i) {
    std::string path = "/d" + std::to_string(i % 1200) + "/a/b/c" + std::to_string(i);
    if (policy->governing_rule(path) != nullptr) ++governed;
  }
  // Depth 3 below the root: only the rules with i % 4 == 3 (250 of 1000) reach.
  EXPECT_EQ(governed, 120000u * 250 / 1200);
}

TEST(Canonical, TextRoundTripAndGoldenHash) {
  Policy p = must_parse(
      "SEC = $(ReadOnly) -a;\n"
      "/etc -> $(SEC) (rulename = \"config\", severity = 100);\n"
      "/etc/ssh -> +pinugtsm+sha512 (recurse = 1);\n"
      "/var/log -> $(Growing) (rulename = logs, recurse = true);\n"
      "\"/srv/my data\" -> $(IgnoreAll) (recurse = 0);\n"
      "\"/srv/cost$5\" -> +sha256;\n"
      "!/etc/mtab;\n"
      "!\"/var/log/a b\";\n");
  const std::string expected =
      "/etc -> +pinugtsdbm+sha256 (rulename = \"config\", severity = 100, recurse = true);\n"
      "/etc/ssh -> +pinugtsm+sha512 (rulename = \"/etc/ssh\", severity = 0, recurse = 1);\n"
      "\"/srv/cost\\$5\" -> +sha256 (rulename = \"/srv/cost\\$5\", severity = 0, recurse = true);\n"
      "\"/srv/my data\" -> - (rulename = \"/srv/my data\", severity = 0, recurse = 0);\n"
      "/var/log -> +pinugtdl (rulename = \"logs\", severity = 0, recurse = true);\n"
      "!/etc/mtab;\n"
      "!\"/var/log/a b\";\n";
  EXPECT_EQ(p.canonical_text(), expected);
  expect_round_trip(p);
  // Pinned: a change here changes every policy hash in reports and packages.
  EXPECT_EQ(to_hex(p.hash()), "9b91c9891bc35bdd369c92c1522098aacac4eee7b3a3157dc5d6a8731a162bb3");
  EXPECT_EQ(to_hex(Policy{}.hash()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Canonical, FromPartsSortsAndValidates) {
  Rule b{"/b", PropertySet{}.add(P::kSize), "", 3, 2, {}};
  Rule a{"/a", PropertySet{}.add(P::kInode), "A", 0, Rule::kUnlimited, {}};
  auto policy = Policy::from_parts({b, a}, {"/z", "/b/x"});
  ASSERT_TRUE(policy) << policy.error().message;
  EXPECT_EQ(policy->rules()[0].path, "/a");
  EXPECT_EQ(policy->rules()[1].name, "/b");  // an empty name becomes the path
  EXPECT_EQ(policy->stop_points(), (std::vector<std::string>{"/b/x", "/z"}));
  expect_round_trip(*policy);

  EXPECT_FALSE(Policy::from_parts({a, a}, {}));
  EXPECT_FALSE(Policy::from_parts({a}, {"/a"}));
  EXPECT_FALSE(Policy::from_parts({}, {"/z", "/z"}));
  EXPECT_FALSE(Policy::from_parts({}, {"/z/"}));
  Rule bad = a;
  bad.path = "/a/./b";
  EXPECT_EQ(Policy::from_parts({bad}, {}).error().message,
            "rule path \"/a/./b\": a path must not contain '.' components");
  bad = a;
  bad.severity = 1000001;
  EXPECT_FALSE(Policy::from_parts({bad}, {}));
  bad = a;
  bad.depth = -2;
  EXPECT_FALSE(Policy::from_parts({bad}, {}));
  bad = a;
  bad.name = "a\nb";
  EXPECT_FALSE(Policy::from_parts({bad}, {}));
}

TEST(Canonical, RealisticPolicy) {
  // Shaped like Tripwire's stock twpol.txt for a Linux guest.
  Policy p = must_parse(R"(# mchain guest policy: Linux server
SEC_CRIT      = $(IgnoreNone)-sha512 ;  # critical files that should not change
SEC_BIN       = $(ReadOnly) ;           # binaries that should not change
SEC_CONFIG    = $(Dynamic) +sha256 ;    # config files changed rarely but accessed often
SEC_LOG       = $(Growing) ;            # files that only grow
SEC_INVARIANT = +tpug ;                 # directories that never change ownership
SIG_LOW  = 33 ;
SIG_MED  = 66 ;
SIG_HI   = 100 ;

(rulename = "Critical system boot files", severity = $(SIG_HI)) {
  /boot       -> $(SEC_CRIT) ;
  /lib/modules -> $(SEC_CRIT) (recurse = 2) ;
  !/boot/grub/grubenv ;
}

(rulename = "System binaries", severity = $(SIG_HI)) {
  /bin        -> $(SEC_BIN) ;
  /sbin       -> $(SEC_BIN) ;
  /usr/bin    -> $(SEC_BIN) ;
  /usr/sbin   -> $(SEC_BIN) ;
  /usr/local/bin -> $(SEC_BIN) (severity = $(SIG_MED)) ;
}

(rulename = "Configuration", severity = $(SIG_MED)) {
  /etc        -> $(SEC_CONFIG) ;
  /etc/ssh    -> $(SEC_BIN) (rulename = "SSH configuration", severity = $(SIG_HI)) ;
  /etc/shadow -> $(SEC_CRIT) (recurse = false) ;
  !/etc/mtab ;
  !/etc/adjtime ;
}

/var/log     -> $(SEC_LOG) (rulename = "Logs", severity = $(SIG_LOW)) ;
/var/spool   -> $(SEC_INVARIANT) (recurse = 0) ;
/root        -> $(SEC_CRIT) (rulename = "Root's home", severity = $(SIG_HI)) ;
!/var/log/journal ;
)");
  EXPECT_EQ(p.rules().size(), 13u);
  EXPECT_EQ(p.stop_points().size(), 4u);
  const Rule* ssh = p.governing_rule("/etc/ssh/sshd_config");
  ASSERT_NE(ssh, nullptr);
  EXPECT_EQ(ssh->name, "SSH configuration");
  EXPECT_EQ(ssh->severity, 100u);
  EXPECT_EQ(ssh->mask.to_string(), "+pinugtsdbm+sha256");
  const Rule* hosts = p.governing_rule("/etc/hosts");
  ASSERT_NE(hosts, nullptr);
  EXPECT_EQ(hosts->name, "Configuration");
  EXPECT_EQ(hosts->severity, 66u);
  EXPECT_EQ(hosts->mask.to_string(), "+pinugtd+sha256");
  EXPECT_EQ(p.governing_rule("/etc/mtab"), nullptr);
  EXPECT_EQ(p.governing_rule("/lib/modules/6.1/kernel/x.ko"), nullptr);  // depth 3 > 2
  EXPECT_EQ(p.governing_rule("/lib/modules/6.1/modules.dep")->name, "Critical system boot files");
  EXPECT_EQ(p.governing_rule("/usr/local/bin/tool")->severity, 66u);
  EXPECT_EQ(p.governing_rule("/var/spool/cron"), nullptr);
  EXPECT_EQ(p.governing_rule("/var/log/syslog")->mask, mask_of("$(Growing)"));
  EXPECT_EQ(p.governing_rule("/boot/vmlinuz")->mask.to_string(), "+pinugtsdrbmca+sha256");
  expect_round_trip(p);
}

// Random policies through from_parts, with paths and names full of characters that need
// quoting or escaping, must survive canonical text → parse unchanged.
TEST(Canonical, RandomRoundTrip) {
  std::mt19937 rng(20240611);
  const std::vector<std::string> pieces = {"a",  "etc", "x y", "q\"t", "$(", "#",    "\\",
                                           "é",  "-",   "+",   "..a",  ".b", ";",    "(){}",
                                           "->", "!",   "=",   "_",    "9",  "$(X)", "'"};
  auto pick = [&](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  };
  auto random_path = [&] {
    std::string path;
    std::size_t components = pick(4);
    if (components == 0) return std::string("/");
    for (std::size_t i = 0; i < components; ++i) {
      path += '/';
      std::size_t parts = 1 + pick(2);
      for (std::size_t k = 0; k < parts; ++k) path += pieces[pick(pieces.size())];
    }
    return path;
  };
  for (int round = 0; round < 200; ++round) {
    std::set<std::string> paths;
    std::vector<Rule> rules;
    std::size_t rule_count = pick(12);
    for (std::size_t i = 0; i < rule_count; ++i) {
      Rule r;
      r.path = random_path();
      if (!paths.insert(r.path).second) continue;
      r.mask = PropertySet::from_bits(static_cast<std::uint16_t>(rng()));
      if (pick(3) == 0) r.name = pieces[pick(pieces.size())] + " " + pieces[pick(pieces.size())];
      r.severity = static_cast<std::uint32_t>(pick(1000001));
      r.depth = static_cast<std::int32_t>(pick(6)) - 1;
      rules.push_back(std::move(r));
    }
    std::vector<std::string> stops;
    std::size_t stop_count = pick(4);
    for (std::size_t i = 0; i < stop_count; ++i) {
      std::string path = random_path();
      if (paths.insert(path).second) stops.push_back(path);
    }
    auto policy = Policy::from_parts(rules, stops);
    ASSERT_TRUE(policy) << policy.error().message;
    expect_round_trip(*policy);
    if (HasFatalFailure() || HasFailure()) break;
  }
}

// Random term sequences against a direct model of the sign rules.
TEST(Mask, RandomTermsMatchModel) {
  std::mt19937 rng(7);
  const std::vector<std::pair<std::string, Property>> terms = {
      {"p", P::kPermissions}, {"i", P::kInode},   {"n", P::kLinks},       {"u", P::kUid},
      {"g", P::kGid},         {"t", P::kType},    {"s", P::kSize},        {"d", P::kDevice},
      {"r", P::kRdev},        {"b", P::kBlocks},  {"m", P::kMtime},       {"c", P::kCtime},
      {"a", P::kAtime},       {"l", P::kGrowing}, {"sha256", P::kSha256}, {"sha512", P::kSha512}};
  for (int round = 0; round < 500; ++round) {
    std::string text;
    PropertySet model;
    bool add = true;
    std::size_t count = 1 + rng() % 12;
    for (std::size_t i = 0; i < count; ++i) {
      if (rng() % 3 == 0) {
        add = rng() % 2 == 0;
        text += add ? '+' : '-';
      }
      const auto& [code, property] = terms[rng() % terms.size()];
      if (rng() % 4 == 0) text += ' ';
      text += code;
      if (add) {
        model.add(property);
      } else {
        model.remove(property);
      }
    }
    ASSERT_EQ(mask_of(text), model) << text;
    ASSERT_EQ(mask_of(model.to_string()), model) << model.to_string();
  }
}

TEST(LoadPolicy, FileAndErrors) {
  testing::TempDir dir;
  auto file = dir.path() / "site.pol";
  {
    std::ofstream out(file);
    out << "/etc -> $(ReadOnly);\n!/etc/mtab;\n";
  }
  auto policy = load_policy(file);
  ASSERT_TRUE(policy) << policy.error().message;
  EXPECT_EQ(policy->rules().size(), 1u);
  {
    std::ofstream out(file);
    out << "/etc -> $(ReadOnly);\n/etc/x -> +Q;\n";
  }
  auto bad = load_policy(file);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.substr(0, file.string().size() + 7), file.string() + ":2:12: ");
  {
    std::ofstream out(file);
    out << std::string((std::size_t{1} << 20) + 1, ' ');
  }
  auto large = load_policy(file);
  ASSERT_FALSE(large);
  EXPECT_NE(large.error().message.find("larger than the limit of 1 MiB"), std::string::npos);
  auto missing = load_policy(dir.path() / "missing.pol");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("missing.pol: No such file or directory"),
            std::string::npos)
      << missing.error().message;
}

}  // namespace
}  // namespace mchain::measure
