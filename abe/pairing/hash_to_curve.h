// Hashing to BLS12-381 as RFC 9380 specifies it: expand_message_xmd with SHA-256 (§5.3.1),
// hash_to_field (§5.2), and the suite BLS12381G1_XMD:SHA-256_SSWU_RO_ (§8.8.1): simplified SWU
// onto the 11-isogenous curve E', the 11-isogeny to E: y^2 = x^3 + 4, and cofactor clearing.
//
// Constant time: the message and the field elements derived from it are treated as secret (an
// ABE key's attributes, or randomness derived by hashing). The field arithmetic, square roots
// and selections never branch on them; lengths (of the message, the DST and the output) and
// the public constants are the only things branched on. hash_to_g1's final multiplication by
// h_eff is variable-time in the scalar, which is a public constant.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

#include "abe/pairing/fields.h"
#include "abe/pairing/g1.h"
#include "chain/types.h"

namespace mchain::abe {

// The domain separation tag of the attribute hash of the ABE schemes (RFC 9380 §3.1 format:
// application, version, ciphersuite ID). Changing it changes every attribute's point, hence
// every key and ciphertext.
inline constexpr std::string_view kAttributeDst =
    "MCHAIN-ABE-V01-CS01-with-BLS12381G1_XMD:SHA-256_SSWU_RO_";

// expand_message_xmd(msg, DST, len_in_bytes) with SHA-256 (RFC 9380 §5.3.1): len_in_bytes
// uniform bytes. A DST longer than 255 bytes is first replaced by
// SHA-256("H2C-OVERSIZE-DST-" || DST) (§5.3.3). nullopt when len_in_bytes > 65535 or needs more
// than 255 SHA-256 blocks (len_in_bytes > 8160), the RFC's abort cases. len_in_bytes = 0 gives
// an empty result.
std::optional<Bytes> expand_message_xmd(ByteView msg, ByteView dst, std::size_t len_in_bytes);

// hash_to_field(msg, 2) over Fp with L = 64 (RFC 9380 §5.2; the suite's u0, u1): 128 expanded
// bytes, each 64-byte half read big-endian and reduced mod p. Any DST length is accepted.
std::array<Fp, 2> hash_to_fp(ByteView msg, ByteView dst);

// hash_to_field(msg, 1) over Fr with L = 48 (RFC 9380 §5.2 with modulus r): a scalar from a
// string, statistically close to uniform (48 bytes for a 255-bit modulus, bias < 2^-128).
Fr hash_to_scalar(ByteView msg, ByteView dst);

// A big-endian integer of up to 64 bytes reduced mod r (hash_to_field's OS2IP mod r), in
// constant time. From 48 uniform bytes the result is within 2^-128 of uniform (random_scalar).
Fr scalar_from_wide_bytes(ByteView bytes);

// map_to_curve for G1 (RFC 9380 §6.6.3): simplified SWU onto E' with Z = 11, then the
// 11-isogeny E' -> E (Appendix E.2). The result is on E but in general not in G1 (clear the
// cofactor for that). Returns the point at infinity only if the SWU point is in the isogeny's
// kernel, which no known input reaches. Constant time in u.
G1Affine map_to_curve_g1(const Fp& u);

// hash_to_curve for BLS12381G1_XMD:SHA-256_SSWU_RO_ (RFC 9380 §3 and §8.8.1): u0, u1 =
// hash_to_fp(msg, dst); P = h_eff · (map_to_curve_g1(u0) + map_to_curve_g1(u1)) with
// h_eff = 0xd201000000010001 (§7: multiplying by h_eff clears the cofactor). The result is in
// G1; it is a random oracle onto G1 when dst is unique to its use.
G1 hash_to_g1(ByteView msg, ByteView dst);

}  // namespace mchain::abe
