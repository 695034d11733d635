// The optimal ate pairing (abe/pairing/pairing.h): published values of e(G1, G2) in both
// conventions, kilic's e([k]G1, [k]G2) vectors, a slow textbook Miller loop as an oracle for the
// optimised line functions, and the algebraic properties (bilinearity, non-degeneracy, order).
#include "abe/pairing/pairing.h"

#include <gmp.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "mpz.h"
#include "pairing_vectors.h"

namespace mchain::abe {
namespace {

// e([k]G1, [k]G2) from kilic/bls12-381, as stored in noble-curves@29c12fa
// test/vectors/bls12-381/go_pairing_vectors/pairing.json (entries k = 2 and k = 20). kilic writes
// the coefficients in reverse tower order (e11 first), one 96-digit chunk per line here.
constexpr const char* kKilicK2[12] = {
    "17e574672a60b067c6fbd0b27323609f7552e76ca5d2339ed4de298e5af77a5d3841aa8a2a911d90d4015338324063"
    "21",
    "07a645c26d896b53ba5dbd542d73f707928ce3a95049e97dc06bf1b82861b8298e0cbd015ef49d0955f6046edbf642"
    "8f",
    "0bf98189a6bfcfce0e5563b50e2be1110b1aaf00cdb52901c66bcff5d24dcecfc61d373ec7981936889ad090a76ca9"
    "47",
    "0a385bc3302b3df7bfe9f129a1f940c939cb1f8bf6b1add53763e5a01b4742197d6cff0e7f94f6d4a5c0bf161fb87a"
    "0a",
    "10206827c9f539ca5600bc98e3add3752285cdd653c46bc602aed8c99def332a39571dbd93583391c2fe8ecbb7c278"
    "b7",
    "18297eef1545b2815e43667c41a23ef3476c3fcb8091861e64d72607c4dc1d82376fcbfff5e603d3551611aa13c504"
    "87",
    "0a01ef8d6c28bad70063c03eee5fa022e31d5323d8b697db044266e9416ea69654e7fb0dd7525e02848f5ed4570737"
    "a3",
    "08cbd3ec44c0fcf1c8e1b2968236fae7fa61a69639753490959d3a97511ad46fb72dd4985041cfed1a0bce751324a1"
    "9e",
    "16b1a039ea23c36df8238406fbb5b4ed964593b5061de4eea61cb7da9cde8bf1b767628ff150d2cf75b44d661b99ef"
    "ab",
    "18e15e7f8620efe10e78078130016625926a7bbda8b077408e3c5940f9aed6cd955554449e35e3be81ea009eb54edd"
    "e8",
    "0f65b3142efab12af4768c1f88687c978dd5d56e83179ea54f7d8d8ee9dc6bdf9ed701a2fd308f63d58ca6cb906e9e"
    "a1",
    "027f832b30e9109bb2ae3598aa2ca78d9c990d3a2f3da0da0e71df36a113c88398f8c474573d03e18cbb5faa53a1fe"
    "ef",
};
constexpr const char* kKilicK20[12] = {
    "08f6eda507fecb3bc16b671787f011cb27311436a863c47bbd97810b6a4c39fe5f6e2e8640c228ff4e67ed1c029d49"
    "dd",
    "08359f36fceac2d1551ec5eb1dd09429fa1be3b1d9a8b0bd254a203c6538962f3e7d8218b8a4082203526d72a1573e"
    "ac",
    "017ea0df86b377ce4f78af807c084a879560467e42c233c1bacdef0f4d01c16e3f4624fa92e6a8fb817a2d7935cce6"
    "b0",
    "0d017926ebd99920bf32325e6224aa0bbc310d50a437d56cf45341bc5b3efc83d4f94b245bf93d2ee3d227ead3787b"
    "75",
    "15c268d6523923d8623430fa00ffaaab4691fdb03f95e37f9e0cb358b557f9d6c7ef28377fa10e8012c500864588dc"
    "85",
    "15c9860033c730a7ec47b9ffb6db0ca1f51d98ad225812e4f3d5065a71d75e378cd17d7fe42fb61e12842e9297163f"
    "67",
    "0f868505be3acd439ce210738722d5d118cdfe15e834aabd306d6dbb2f2e688ba56050c6d3563c64025146226267bc"
    "4d",
    "0df874a31641017ff53a6029fd766de632c4a5c710b07f0108ea453d71ad40b808d16ae5583e9f10682f02047dd22b"
    "cb",
    "0913933271997a48aced271a8aa5339be4cf53128c7141e02c0d8b614f3f2390a2f39f8830d11ed3d4fdad9d85f29f"
    "0e",
    "0ce5ff5140e1682cda537a024383aa726e1a176ed506587841d70f7b011a1ef6d05039d3ad14872068b86d5eb5837c"
    "1d",
    "1880c719de4b9b0c382cae0193768ac7de4fe8105d06e9a89cfb72f740743f50c280f2a4efab0e6719bb8e2694871f"
    "50",
    "058739cc01fba95cb2cd99aa142b27f3d1ffec250cd90103705599bea97b92bb1ce6ae1b0bede934663de468c33cef"
    "ea",
};

constexpr const char* kP =
    "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaa"
    "ab";
constexpr const char* kR = "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001";

std::string hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

// The 12 coefficients of `value` as hex, in tower order.
std::vector<std::string> coefficients(const Fp12& value) {
  const auto bytes = value.to_bytes();
  std::vector<std::string> out;
  for (std::size_t i = 0; i < 12; ++i) out.push_back(hex(std::span(bytes).subspan(48 * i, 48)));
  return out;
}

template <class List>
std::vector<std::string> listed(const List& values, bool reversed = false) {
  std::vector<std::string> out(std::begin(values), std::end(values));
  if (reversed) std::reverse(out.begin(), out.end());
  return out;
}

// (p^12 − 1)/r, the literal final exponent.
std::vector<std::uint64_t> literal_final_exponent() {
  const testing::Mpz p(kP), r(kR);
  testing::Mpz e;
  mpz_pow_ui(e.get(), p.get(), 12);
  mpz_sub_ui(e.get(), e.get(), 1);
  EXPECT_TRUE(mpz_divisible_p(e.get(), r.get()));
  mpz_divexact(e.get(), e.get(), r.get());
  return e.limbs();
}

std::vector<std::uint64_t> group_order() { return testing::Mpz(kR).limbs(); }

class PairingTest : public ::testing::Test {
 protected:
  Fr random_scalar() {
    Fr::Encoded bytes;
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng_());
    bytes[0] &= 0x3f;  // below r, whose top byte is 0x73
    return *Fr::from_bytes(bytes);
  }
  G1 random_g1() { return G1::generator() * random_scalar(); }
  G2 random_g2() { return G2::generator() * random_scalar(); }

  std::mt19937_64 rng_{0x9a1121};
};

// ---- the slow oracle: Miller's algorithm on E(Fp12) with textbook affine lines.

struct Fp12Point {
  Fp12 x, y;
};

Fp12 embed(const Fp2& a) { return Fp12{Fp6{a, Fp2::zero(), Fp2::zero()}, Fp6::zero()}; }
Fp12 embed(const Fp& a) { return embed(Fp2{a, Fp::zero()}); }

// ψ(x', y') = (x'/w^2, y'/w^3) maps the twist E' into E(Fp12).
Fp12Point untwist(const G2Affine& q) {
  const Fp12 w{Fp6::zero(), Fp6::one()};
  const Fp12 w_inv = w.inverse();
  const Fp12 w_inv2 = w_inv.square();
  return {embed(q.x) * w_inv2, embed(q.y) * w_inv2 * w_inv};
}

// The line through a and b (the tangent when a == b) evaluated at p; a becomes a + b.
Fp12 line_and_add(Fp12Point& a, const Fp12Point& b, const Fp12Point& p) {
  Fp12 slope;
  if (a.x == b.x && a.y == b.y) {
    const Fp12 x2 = a.x.square();
    slope = (x2 + x2 + x2) * (a.y + a.y).inverse();
  } else {
    slope = (b.y - a.y) * (b.x - a.x).inverse();
  }
  const Fp12 value = p.y - a.y - slope * (p.x - a.x);
  const Fp12 x3 = slope.square() - a.x - b.x;
  a = {x3, slope * (a.x - x3) - a.y};
  return value;
}

Fp12 reference_miller_loop(const G1Affine& p, const G2Affine& q) {
  const Fp12Point pp{embed(p.x), embed(p.y)};
  const Fp12Point qq = untwist(q);
  Fp12Point t = qq;
  Fp12 f = Fp12::one();
  constexpr std::uint64_t kAbsX = 0xd201000000010000;
  for (int bit = 62; bit >= 0; --bit) {
    f = f.square() * line_and_add(t, t, pp);
    if ((kAbsX >> bit) & 1) f = f * line_and_add(t, qq, pp);
  }
  return f.conjugate();
}

// ---- known answers

TEST_F(PairingTest, GeneratorPairingIsTheLibraryValue) {
  EXPECT_EQ(coefficients(Gt::generator().value()), listed(testing::kPairingLibrary));
  EXPECT_EQ(coefficients(pairing(G1::generator(), G2::generator()).value()),
            listed(testing::kPairingLibrary));
}

TEST_F(PairingTest, LiteralFinalExponentGivesTheIetfValueWhoseCubeIsTheLibraryValue) {
  const PairingInput pair{G1::generator().to_affine(), G2::generator().to_affine()};
  const Fp12 literal = miller_loop({&pair, 1}).pow(literal_final_exponent());
  EXPECT_EQ(coefficients(literal), listed(testing::kPairingLiteral));
  const std::uint64_t three = 3;
  EXPECT_EQ(coefficients(literal.pow({&three, 1})), listed(testing::kPairingLibrary));
}

TEST_F(PairingTest, KilicVectors) {
  EXPECT_EQ(
      coefficients(
          pairing(G1::generator() * Fr::from_u64(2), G2::generator() * Fr::from_u64(2)).value()),
      listed(kKilicK2, /*reversed=*/true));
  EXPECT_EQ(
      coefficients(
          pairing(G1::generator() * Fr::from_u64(20), G2::generator() * Fr::from_u64(20)).value()),
      listed(kKilicK20, /*reversed=*/true));
}

TEST_F(PairingTest, OptimisedLinesAgreeWithTheTextbookMillerLoop) {
  // The two loops' values differ by factors in proper subfields (the optimised lines are scaled
  // and multiplied by w^3), which the final exponentiation removes; so compare after it.
  std::vector<std::pair<G1, G2>> inputs = {{G1::generator(), G2::generator()}};
  for (int i = 0; i < 3; ++i) inputs.emplace_back(random_g1(), random_g2());
  for (const auto& [p, q] : inputs) {
    const G1Affine pa = p.to_affine();
    const G2Affine qa = q.to_affine();
    const PairingInput pair{pa, qa};
    EXPECT_EQ(final_exponentiation(miller_loop({&pair, 1})),
              final_exponentiation(reference_miller_loop(pa, qa)));
  }
}

// ---- algebra

TEST_F(PairingTest, Bilinear) {
  const G1 p = random_g1();
  const G2 q = random_g2();
  const Fr a = random_scalar();
  const Fr b = random_scalar();
  const Gt base = pairing(p, q);
  const Gt expected = base.pow(a * b);
  EXPECT_EQ(pairing(p * a, q * b), expected);
  EXPECT_EQ(pairing(p * (a * b), q), expected);
  EXPECT_EQ(pairing(p, q * (a * b)), expected);
  EXPECT_NE(expected, base);

  const G2 q2 = random_g2();
  EXPECT_EQ(pairing(p, q + q2), pairing(p, q) * pairing(p, q2));
  const G1 p2 = random_g1();
  EXPECT_EQ(pairing(p + p2, q), pairing(p, q) * pairing(p2, q));
}

TEST_F(PairingTest, NonDegenerateWithOrderR) {
  const Gt g = Gt::generator();
  EXPECT_FALSE(g.is_identity());
  EXPECT_TRUE(g.pow_vartime(group_order()).is_identity());
  // In the cyclotomic subgroup: f^(p^4) · f = f^(p^2).
  const Fp12 f2 = g.value().frobenius().frobenius();
  EXPECT_EQ(f2.frobenius().frobenius() * g.value(), f2);

  EXPECT_TRUE(pairing(G1::identity(), G2::generator()).is_identity());
  EXPECT_TRUE(pairing(G1::generator(), G2::identity()).is_identity());
  EXPECT_TRUE(
      (pairing(G1::generator(), G2::generator()) * pairing(-G1::generator(), G2::generator()))
          .is_identity());
}

TEST_F(PairingTest, MultiPairingIsTheProductOfSinglePairings) {
  std::vector<PairingInput> pairs;
  Gt product;
  for (int i = 0; i < 5; ++i) {
    const G1 p = random_g1();
    const G2 q = random_g2();
    pairs.push_back({p.to_affine(), q.to_affine()});
    product *= pairing(p, q);
  }
  pairs.push_back({G1::identity().to_affine(), G2::generator().to_affine()});  // contributes 1
  EXPECT_EQ(multi_pairing(pairs), product);
  EXPECT_TRUE(multi_pairing({}).is_identity());

  // The KEM's decryption shape: e(A, B) · e(−A, B) = 1 inside one multi-pairing.
  const G1 a = random_g1();
  const G2 b = random_g2();
  const PairingInput cancel[] = {{a.to_affine(), b.to_affine()}, {(-a).to_affine(), b.to_affine()}};
  EXPECT_TRUE(multi_pairing(cancel).is_identity());
}

TEST_F(PairingTest, SecretExponentMatchesPublicExponent) {
  const Gt g = Gt::generator();
  for (int i = 0; i < 4; ++i) {
    const Fr k = random_scalar();
    const auto bytes = k.to_bytes();
    std::vector<std::uint64_t> k_limbs(4);
    for (std::size_t j = 0; j < 32; ++j)
      k_limbs[j / 8] |= std::uint64_t{bytes[31 - j]} << (8 * (j % 8));
    EXPECT_EQ(g.pow(k), g.pow_vartime(k_limbs));
  }
  EXPECT_TRUE(g.pow(Fr::zero()).is_identity());
  EXPECT_EQ(g.pow(Fr::one()), g);
  EXPECT_EQ(g.pow(-Fr::one()), g.inverse());
  EXPECT_EQ(g.pow(Fr::from_u64(2)), g.squared());
}

TEST_F(PairingTest, GtDecodingChecksTheSubgroup) {
  const Gt g = pairing(random_g1(), random_g2());
  const auto bytes = g.to_bytes();
  ASSERT_TRUE(Gt::from_bytes(bytes).has_value());
  EXPECT_EQ(*Gt::from_bytes(bytes), g);
  EXPECT_FALSE(Gt::from_bytes(std::span(bytes).first(575)).has_value());

  // A coefficient equal to p.
  auto bad = bytes;
  const Fp::Encoded p_bytes = (-Fp::one()).to_bytes();
  std::copy(p_bytes.begin(), p_bytes.end(), bad.begin());
  bad[47] += 1;  // p − 1 + 1
  EXPECT_FALSE(Gt::from_bytes(bad).has_value());

  // A field element off the cyclotomic subgroup, and one on it but outside GT: the easy part of
  // the final exponentiation lands in the cyclotomic subgroup, whose order is Φ12(p), not r.
  // (Not g + 1: for unitary g, conj(1 + g)/(1 + g) = g^-1 lands back in GT.)
  Fp12 generic = g.value();
  generic.c1.c2.c1 += Fp::from_u64(7);
  EXPECT_FALSE(Gt::from_bytes(generic.to_bytes()).has_value());
  Fp12 cyclotomic = generic.conjugate() * generic.inverse();
  cyclotomic = cyclotomic.frobenius().frobenius() * cyclotomic;
  EXPECT_FALSE(Gt::from_bytes(cyclotomic.to_bytes()).has_value());
}

}  // namespace
}  // namespace mchain::abe
