#include "abe/pairing/bls12_381.h"

#include <array>

#include "chain/crypto/hash.h"

namespace mchain::abe {

Fr random_scalar() {
  std::array<std::uint8_t, 48> wide;
  crypto::random_bytes(wide);
  return scalar_from_wide_bytes(wide);
}

}  // namespace mchain::abe
