// Micro benchmarks (Google Benchmark) of the primitives a package's validation is made of.
// Run: ./build/default/bench/mchain-micro [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

#include "chain/crypto/aead.h"
#include "chain/crypto/hash.h"
#include "chain/crypto/sign.h"
#include "chain/package/records.h"

namespace {

using namespace mchain;

crypto::PrivateKey key(crypto::SigAlg alg) { return *crypto::PrivateKey::generate(alg); }

void BM_Sha256(benchmark::State& state) {
  Bytes data(static_cast<std::size_t>(state.range(0)), 0x5a);
  for (auto _ : state) benchmark::DoNotOptimize(crypto::sha256(data));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Sha256)->Arg(64)->Arg(2754)->Arg(1 << 20);

void BM_Verify(benchmark::State& state) {
  const auto alg = static_cast<crypto::SigAlg>(state.range(0));
  const crypto::PrivateKey signer = key(alg);
  const Bytes message(56, 0x11);  // a signing message: domain tag and package id
  const crypto::Signature signature = *signer.sign(message);
  for (auto _ : state) {
    benchmark::DoNotOptimize(signer.public_key().verify(message, signature));
  }
  state.SetLabel(std::string(crypto::to_string(alg)));
}
BENCHMARK(BM_Verify)
    ->Arg(static_cast<int>(crypto::SigAlg::ecdsa_p256_sha256))
    ->Arg(static_cast<int>(crypto::SigAlg::ed25519));

void BM_Sign(benchmark::State& state) {
  const auto alg = static_cast<crypto::SigAlg>(state.range(0));
  const crypto::PrivateKey signer = key(alg);
  const Bytes message(56, 0x11);
  for (auto _ : state) benchmark::DoNotOptimize(signer.sign(message));
  state.SetLabel(std::string(crypto::to_string(alg)));
}
BENCHMARK(BM_Sign)
    ->Arg(static_cast<int>(crypto::SigAlg::ecdsa_p256_sha256))
    ->Arg(static_cast<int>(crypto::SigAlg::ed25519));

void BM_AesGcmSeal(benchmark::State& state) {
  const crypto::AeadKey k = crypto::random_aead_key();
  const crypto::AeadNonce nonce = crypto::random_aead_nonce();
  const Bytes aad(90, 1);
  const Bytes report(static_cast<std::size_t>(state.range(0)), 2);
  for (auto _ : state) benchmark::DoNotOptimize(crypto::aes256gcm_seal(k, nonce, aad, report));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_AesGcmSeal)->Arg(2639);

// Decoding a 2,960-byte package (the paper's size): canonical checks plus the id's SHA-256.
void BM_PackageDecode(benchmark::State& state) {
  const crypto::PrivateKey vm = key(crypto::SigAlg::ecdsa_p256_sha256);
  const PackageOrigin origin{Uuid::random(), "alice", "node-1", 1'700'000'000'000'000};
  const Bytes encoded = make_data_package(origin, PolicyRef{}, crypto::random_aead_key(),
                                          Bytes(2639, 7), {&vm, &vm, &vm})
                            ->encode();
  for (auto _ : state) benchmark::DoNotOptimize(Package::decode(encoded));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * encoded.size()));
}
BENCHMARK(BM_PackageDecode);

}  // namespace

BENCHMARK_MAIN();
