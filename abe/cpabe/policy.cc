// Policy and attribute-set text for CP-ABE: a policy is an AND of positive and negative literals
// over the universe fixed at Setup, so there is no tree and no secret sharing, only a lookup of
// each name in the PublicKey's ordered list. Policies, sets and names are public.
#include <algorithm>
#include <cctype>
#include <string>
#include <unordered_map>

#include "abe/cpabe/cpabe.h"
#include "abe/cpabe/internal.h"

namespace mchain::abe::cpabe {
namespace {

constexpr std::size_t kMaxText = 65536;

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == ':' ||
         c == '-';
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool keyword(std::string_view word) {
  return iequals(word, "and") || iequals(word, "or") || iequals(word, "not");
}

bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string at(std::size_t position) { return "position " + std::to_string(position) + ": "; }

// A character as it should appear in a message: printable ASCII quoted, anything else in hex.
std::string show(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 0xf];
}

struct Word {
  std::size_t position;  // 1-based
  std::string_view text;
};

// Splits on whitespace into words of name characters; anything else is an error.
Result<std::vector<Word>> words(std::string_view text) {
  std::vector<Word> out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (space(text[i])) {
      ++i;
      continue;
    }
    if (!name_char(text[i])) return fail(at(i + 1) + "unexpected character " + show(text[i]));
    const std::size_t start = i;
    while (i < text.size() && name_char(text[i])) ++i;
    out.push_back({start + 1, text.substr(start, i - start)});
  }
  return out;
}

std::unordered_map<std::string_view, std::size_t> index_of(const PublicKey& pk) {
  std::unordered_map<std::string_view, std::size_t> out;
  for (std::size_t i = 0; i < pk.names.size(); ++i) out.emplace(pk.names[i], i);
  return out;
}

}  // namespace

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLength && std::ranges::all_of(name, name_char) &&
         !keyword(name);
}

Result<Policy> parse_policy(const PublicKey& pk, std::string_view text) {
  if (text.size() > kMaxText) return fail("policy longer than 65536 bytes");
  auto tokens = words(text);
  if (!tokens) return std::unexpected(tokens.error());
  const auto index = index_of(pk);
  const std::string end = at(text.size() + 1);

  Policy policy{std::vector<Literal>(pk.n(), Literal::kAny)};
  std::size_t i = 0;
  std::string_view after = "";  // what the literal follows, for the messages
  while (true) {
    if (i == tokens->size()) {
      return fail(end + "expected an attribute" + std::string(after) +
                  ", found the end of the policy");
    }
    bool negative = false;
    if (iequals((*tokens)[i].text, "not")) {
      negative = true;
      ++i;
      if (i == tokens->size()) {
        return fail(end + "expected an attribute after 'not', found the end of the policy");
      }
    }
    const Word& name = (*tokens)[i];
    if (keyword(name.text)) {
      return fail(at(name.position) + "expected an attribute, found '" + std::string(name.text) +
                  "'");
    }
    const auto found = index.find(name.text);
    if (found == index.end()) {
      return fail(at(name.position) + "unknown attribute '" + std::string(name.text) + "'");
    }
    if (policy.lits[found->second] != Literal::kAny) {
      return fail(at(name.position) + "attribute '" + std::string(name.text) + "' appears twice");
    }
    policy.lits[found->second] = negative ? Literal::kNeg : Literal::kPos;
    ++i;
    if (i == tokens->size()) break;
    const Word& op = (*tokens)[i];
    if (iequals(op.text, "or")) {
      return fail(at(op.position) +
                  "'or' is not supported: a policy is an AND of attributes and negations");
    }
    if (!iequals(op.text, "and")) {
      return fail(at(op.position) + "expected 'and', found '" + std::string(op.text) + "'");
    }
    ++i;
    after = " after 'and'";
  }
  return policy;
}

std::string to_string(const PublicKey& pk, const Policy& policy) {
  std::string out;
  for (std::size_t i = 0; i < policy.lits.size() && i < pk.n(); ++i) {
    if (policy.lits[i] == Literal::kAny) continue;
    if (!out.empty()) out += " and ";
    if (policy.lits[i] == Literal::kNeg) out += "not ";
    out += pk.names[i];
  }
  return out;
}

Result<AttributeFlags> parse_attributes(const PublicKey& pk, std::string_view text) {
  if (text.size() > kMaxText) return fail("attribute list longer than 65536 bytes");
  const auto index = index_of(pk);
  AttributeFlags s(pk.n(), false);
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && space(text[i])) ++i;
  };
  skip_space();
  if (i == text.size()) return s;  // the empty set
  while (true) {
    skip_space();
    if (i == text.size()) {
      return fail(at(i + 1) + "expected an attribute after ',', found the end of the list");
    }
    if (!name_char(text[i]))
      return fail(at(i + 1) + "expected an attribute, found " + show(text[i]));
    const std::size_t start = i;
    while (i < text.size() && name_char(text[i])) ++i;
    const std::string_view name = text.substr(start, i - start);
    const auto found = index.find(name);
    if (found == index.end()) {
      return fail(at(start + 1) + "unknown attribute '" + std::string(name) + "'");
    }
    s[found->second] = true;
    skip_space();
    if (i == text.size()) break;
    if (text[i] != ',') return fail(at(i + 1) + "expected ',', found " + show(text[i]));
    ++i;
  }
  return s;
}

bool satisfies(const AttributeFlags& s, const Policy& policy) {
  if (s.size() != policy.lits.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (policy.lits[i] == Literal::kPos && !s[i]) return false;
    if (policy.lits[i] == Literal::kNeg && s[i]) return false;
  }
  return true;
}

}  // namespace mchain::abe::cpabe
