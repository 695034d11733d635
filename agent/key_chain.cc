#include "agent/key_chain.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace mchain::agent {

namespace {

// What the sealed key is bound to: the VM and the policy version it belongs to.
Bytes sealed_key_aad(const PolicyRecord& record) {
  static constexpr std::string_view kLabel = "mchain/data-key/v1";
  Bytes aad(kLabel.size() + record.vm.bytes.size() + 8);
  std::copy(kLabel.begin(), kLabel.end(), aad.begin());
  std::copy(record.vm.bytes.begin(), record.vm.bytes.end(), aad.begin() + kLabel.size());
  for (std::size_t i = 0; i < 8; ++i) {
    aad[aad.size() - 1 - i] = static_cast<std::uint8_t>(record.version >> (8 * i));
  }
  return aad;
}

}  // namespace

Result<abe::AttributeSet> record_attributes(const PolicyRecord& record) {
  abe::AttributeSet set;
  for (const std::string& attribute : record.attributes) {
    if (auto added = set.add(attribute); !added) {
      return fail("policy attribute '" + attribute + "': " + added.error().message);
    }
  }
  return set;
}

Result<Bytes> seal_data_key(const abe::kp::MasterPublicKey& authority, const PolicyRecord& record,
                            const crypto::AeadKey& key) {
  if (record.scheme != AbeScheme::kp_abe_gpsw) {
    return fail("a " + std::string(to_string(record.scheme)) + " record is not sealed with KP-ABE");
  }
  Result<abe::AttributeSet> attributes = record_attributes(record);
  if (!attributes) return std::unexpected(attributes.error());
  return abe::kp::encrypt(authority, *attributes, key, sealed_key_aad(record));
}

Result<Bytes> seal_data_key(const abe::cpabe::PublicKey& authority, const PolicyRecord& record,
                            const crypto::AeadKey& key) {
  if (record.scheme != AbeScheme::cp_abe_versioned) {
    return fail("a " + std::string(to_string(record.scheme)) + " record is not sealed with CP-ABE");
  }
  Result<abe::cpabe::Policy> policy = abe::cpabe::parse_policy(authority, record.expression);
  if (!policy) return fail("policy expression: " + policy.error().message);
  // CP-ABE encryption takes no associated data: the binding goes in front of the key instead,
  // inside the ciphertext, and is checked on opening.
  Bytes plaintext = sealed_key_aad(record);
  plaintext.insert(plaintext.end(), key.begin(), key.end());
  auto sealed = abe::cpabe::encrypt(authority, *policy, plaintext);
  if (!sealed) return fail("CP-ABE: " + abe::cpabe::describe(sealed.error()));
  return sealed->to_bytes();
}

namespace {

Result<Bytes> open_sealed(const abe::kp::UserKey& key, const PolicyRecord& record) {
  if (record.scheme != AbeScheme::kp_abe_gpsw) {
    return fail("sealed with " + std::string(to_string(record.scheme)) + ", not with KP-ABE");
  }
  // Say in the record's terms which part of the key's policy its attributes miss, before any
  // pairing; the sealed key's own attribute set is the record's (seal_data_key), and if it were
  // not, decryption would fail anyway.
  if (Result<abe::AttributeSet> attributes = record_attributes(record)) {
    if (std::optional<std::string> unmet = abe::explain(key.tree, *attributes)) {
      return fail("access denied: policy v" + std::to_string(record.version) +
                  "'s attributes do not satisfy the key's policy: " + *unmet);
    }
  }
  return abe::kp::decrypt(key, record.sealed_key, sealed_key_aad(record));
}

// "requires not rank_le_1": the first literal of the ciphertext's policy the key's attribute set
// fails. mchaind writes CP expressions in canonical form (literals in universe order, joined by
// " and "), so the k-th literal of the text is the k-th one set in the policy; any other text
// is quoted whole.
std::string unmet_literal(const abe::cpabe::UserKey& key, const abe::cpabe::Ciphertext& ct,
                          std::string_view expression) {
  using abe::cpabe::Literal;
  std::vector<std::string_view> texts;
  for (std::size_t at = 0;;) {
    const std::size_t next = expression.find(" and ", at);
    texts.push_back(expression.substr(at, next == std::string_view::npos ? next : next - at));
    if (next == std::string_view::npos) break;
    at = next + 5;
  }
  const std::vector<Literal>& lits = ct.policy().lits;
  const auto set =
      std::count_if(lits.begin(), lits.end(), [](Literal l) { return l != Literal::kAny; });
  if (static_cast<std::size_t>(set) == texts.size() && key.s.size() == lits.size()) {
    std::size_t k = 0;
    for (std::size_t i = 0; i < lits.size(); ++i) {
      if (lits[i] == Literal::kAny) continue;
      const bool met = lits[i] == Literal::kPos ? key.s[i] : !key.s[i];
      if (!met) return "requires " + std::string(texts[k]);
      ++k;
    }
  }
  return "'" + std::string(expression) + "' is not satisfied by the key's attributes";
}

Result<Bytes> open_sealed(const abe::cpabe::UserKey& key, const PolicyRecord& record) {
  if (record.scheme != AbeScheme::cp_abe_versioned) {
    return fail("sealed with " + std::string(to_string(record.scheme)) + ", not with CP-ABE");
  }
  auto ct = abe::cpabe::Ciphertext::from_bytes(record.sealed_key);
  if (!ct) return fail("the sealed data key: " + abe::cpabe::describe(ct.error()));
  auto plain = abe::cpabe::decrypt(key, *ct);
  if (!plain) {
    const abe::cpabe::CpAbeError& e = plain.error();
    if (e.code == abe::cpabe::CpAbeErrc::kVersionMismatch) {
      return fail("access denied: sealed under system version " + std::to_string(ct->version()) +
                  ", this key is at version " + std::to_string(key.version) +
                  " (revoked, or not updated)");
    }
    if (e.code == abe::cpabe::CpAbeErrc::kNotAuthorized) {
      return fail("access denied: policy v" + std::to_string(record.version) + " " +
                  unmet_literal(key, *ct, record.expression));
    }
    return fail("CP-ABE: " + abe::cpabe::describe(e));
  }
  const Bytes expected = sealed_key_aad(record);
  if (plain->size() != expected.size() + crypto::kAeadKeySize ||
      !std::equal(expected.begin(), expected.end(), plain->begin())) {
    return fail("the sealed data key belongs to another record");
  }
  return Bytes(plain->begin() + static_cast<std::ptrdiff_t>(expected.size()), plain->end());
}

}  // namespace

Result<crypto::AeadKey> open_data_key(const VerifierKey& verifier, const PolicyRecord& record) {
  if (record.sealed_key.empty()) {
    return fail("policy version " + std::to_string(record.version) +
                " has no sealed data key (no ABE authority when it was written)");
  }
  Result<Bytes> key = std::visit([&](const auto& k) { return open_sealed(k, record); }, verifier);
  if (!key) return std::unexpected(key.error());
  if (key->size() != crypto::kAeadKeySize) return fail("the sealed data key has the wrong length");
  crypto::AeadKey out;
  std::copy(key->begin(), key->end(), out.begin());
  return out;
}

VerifierKeys verifier_keys(std::span<const PolicyRecord> policies,
                           std::span<const KeyLinkRecord> links, const VerifierKey& verifier) {
  std::vector<const PolicyRecord*> newest_first;
  for (const PolicyRecord& record : policies) newest_first.push_back(&record);
  std::sort(newest_first.begin(), newest_first.end(),
            [](const PolicyRecord* a, const PolicyRecord* b) { return a->version > b->version; });

  VerifierKeys out;
  for (const PolicyRecord* record : newest_first) {
    if (out.keys.contains(record->version)) continue;  // reached through a link already
    Result<crypto::AeadKey> key = open_data_key(verifier, *record);
    if (!key) {
      out.denied.emplace(record->version, key.error().message);
      continue;
    }
    // Walk down: K(v-1) from the link v-1 -> v, as long as the chain has one.
    std::uint64_t version = record->version;
    out.keys.emplace(version, *key);
    out.denied.erase(version);  // a broken link from above may have listed it
    for (;;) {
      const auto link = std::find_if(links.begin(), links.end(), [&](const KeyLinkRecord& l) {
        return l.to_version == version && l.from_version < version;
      });
      if (link == links.end() || out.keys.contains(link->from_version)) break;
      Result<crypto::AeadKey> older = unwrap_key_link(*link, out.keys.at(version));
      if (!older) {
        out.denied.emplace(link->from_version, "key link " + std::to_string(link->from_version) +
                                                   " -> " + std::to_string(version) + ": " +
                                                   older.error().message);
        break;
      }
      version = link->from_version;
      out.keys.emplace(version, *older);
    }
  }
  return out;
}

}  // namespace mchain::agent
