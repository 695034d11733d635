// BLS12-381 as the ABE schemes see it: the one header abe/kpabe and abe/cpabe include, so that
// a packaged pairing library could replace everything under abe/pairing/ behind it.
//
//   Fr                      scalars mod r (abe/pairing/fields.h)
//   G1, G1Affine, G2, G2Affine   the source groups, with constant-time scalar multiplication by
//                           Fr and ZCash-format compressed encodings (48 / 96 bytes) whose
//                           decoders check the field, the curve and the subgroup
//   Gt                      the target group, 576-byte encodings, constant-time pow(Fr)
//   pairing, multi_pairing  e: G1 × G2 → Gt (library convention, docs/abe.md)
//   hash_to_g1, hash_to_scalar   RFC 9380 (BLS12381G1_XMD:SHA-256_SSWU_RO_)
//   random_scalar           uniform in [0, r) from the system CSPRNG
#pragma once

#include "abe/pairing/fields.h"
#include "abe/pairing/g1.h"
#include "abe/pairing/g2.h"
#include "abe/pairing/hash_to_curve.h"
#include "abe/pairing/pairing.h"

namespace mchain::abe {

// A scalar from the CSPRNG (crypto::random_bytes): 48 random bytes reduced mod r, within 2^-128
// of uniform in statistical distance (RFC 9380's hash_to_field choice L = 48 for this r), with
// no rejection loop.
Fr random_scalar();

}  // namespace mchain::abe
