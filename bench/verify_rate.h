// The raw signature-verification rate: the unit in which validation goals are stated.
#pragma once

namespace mchain::bench {

// ECDSA P-256 verifications per second on the calling thread: one fresh key signs one 32-byte
// message once, then PublicKey::verify checks it for about `seconds`. Throws
// std::runtime_error if the key cannot be made or the signature does not verify.
double p256_verify_rate_per_core(double seconds);

}  // namespace mchain::bench
