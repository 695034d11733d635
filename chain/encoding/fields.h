// Reading and writing the fields that many chain structures share: format versions, ids,
// signatures and public keys. Internal to the chain module (the readers throw DecodeError).
#pragma once

#include "chain/crypto/sign.h"
#include "chain/encoding/cbor.h"

#include <optional>
#include <string>

namespace mchain::cbor {

// Fails unless the next uint is `expected`: "<field>: unknown <what> version N".
void expect_version(Reader& r, std::string_view field, std::uint64_t expected,
                    std::string_view what);

// A user or node id (types.h: valid_id); empty only where allowed.
std::string read_id(Reader& r, std::string_view field, bool allow_empty = false);

// A signature: [alg, bytes]; an optional one: [] or [alg, bytes].
void write_signature(Writer& w, const crypto::Signature& signature);
crypto::Signature read_signature(Reader& r, std::string_view field);
void write_optional_signature(Writer& w, const std::optional<crypto::Signature>& signature);
std::optional<crypto::Signature> read_optional_signature(Reader& r, std::string_view field);

// A public key: [alg, raw], validated as a key of that algorithm.
void write_public_key(Writer& w, const crypto::PublicKey& key);
crypto::PublicKey read_public_key(Reader& r, std::string_view field);

}  // namespace mchain::cbor
