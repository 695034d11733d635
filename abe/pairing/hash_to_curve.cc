// RFC 9380 hashing for BLS12-381 G1; see hash_to_curve.h.
#include "abe/pairing/hash_to_curve.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "chain/crypto/hash.h"

namespace mchain::abe {
namespace {

// ---- Constants ----------------------------------------------------------------------------

// The 53 coefficients of the 11-isogeny E' -> E, RFC 9380 Appendix E.2, in increasing degree.
// Extracted by script (no digit typed by hand) from
// cfrg/draft-irtf-cfrg-hash-to-curve@00cb83438c16137841d5568fd8a406ab15019e55,
// draft-irtf-cfrg-hash-to-curve.md, section "11-isogeny map for BLS12-381 G1";
// tests/abe/hash_to_curve_test.cc checks them through the RFC's Q0/Q1 vectors and by mapping
// random points onto E.
// clang-format off
// x_num: k_(1,0) .. k_(1,11)
constexpr std::array<std::string_view, 12> kXNum = {
    "11a05f2b1e833340b809101dd99815856b303e88a2d7005ff2627b56cdb4e2c85610c2d5f2e62d6eaeac1662734649b7",
    "17294ed3e943ab2f0588bab22147a81c7c17e75b2f6a8417f565e33c70d1e86b4838f2a6f318c356e834eef1b3cb83bb",
    "d54005db97678ec1d1048c5d10a9a1bce032473295983e56878e501ec68e25c958c3e3d2a09729fe0179f9dac9edcb0",
    "1778e7166fcc6db74e0609d307e55412d7f5e4656a8dbf25f1b33289f1b330835336e25ce3107193c5b388641d9b6861",
    "e99726a3199f4436642b4b3e4118e5499db995a1257fb3f086eeb65982fac18985a286f301e77c451154ce9ac8895d9",
    "1630c3250d7313ff01d1201bf7a74ab5db3cb17dd952799b9ed3ab9097e68f90a0870d2dcae73d19cd13c1c66f652983",
    "d6ed6553fe44d296a3726c38ae652bfb11586264f0f8ce19008e218f9c86b2a8da25128c1052ecaddd7f225a139ed84",
    "17b81e7701abdbe2e8743884d1117e53356de5ab275b4db1a682c62ef0f2753339b7c8f8c8f475af9ccb5618e3f0c88e",
    "80d3cf1f9a78fc47b90b33563be990dc43b756ce79f5574a2c596c928c5d1de4fa295f296b74e956d71986a8497e317",
    "169b1f8e1bcfa7c42e0c37515d138f22dd2ecb803a0c5c99676314baf4bb1b7fa3190b2edc0327797f241067be390c9e",
    "10321da079ce07e272d8ec09d2565b0dfa7dccdde6787f96d50af36003b14866f69b771f8c285decca67df3f1605fb7b",
    "6e08c248e260e70bd1e962381edee3d31d79d7e22c837bc23c0bf1bc24c6b68c24b1b80b64d391fa9c8ba2e8ba2d229",
};
// x_den: k_(2,0) .. k_(2,9); the leading coefficient is 1
constexpr std::array<std::string_view, 10> kXDen = {
    "8ca8d548cff19ae18b2e62f4bd3fa6f01d5ef4ba35b48ba9c9588617fc8ac62b558d681be343df8993cf9fa40d21b1c",
    "12561a5deb559c4348b4711298e536367041e8ca0cf0800c0126c2588c48bf5713daa8846cb026e9e5c8276ec82b3bff",
    "b2962fe57a3225e8137e629bff2991f6f89416f5a718cd1fca64e00b11aceacd6a3d0967c94fedcfcc239ba5cb83e19",
    "3425581a58ae2fec83aafef7c40eb545b08243f16b1655154cca8abc28d6fd04976d5243eecf5c4130de8938dc62cd8",
    "13a8e162022914a80a6f1d5f43e7a07dffdfc759a12062bb8d6b44e833b306da9bd29ba81f35781d539d395b3532a21e",
    "e7355f8e4e667b955390f7f0506c6e9395735e9ce9cad4d0a43bcef24b8982f7400d24bc4228f11c02df9a29f6304a5",
    "772caacf16936190f3e0c63e0596721570f5799af53a1894e2e073062aede9cea73b3538f0de06cec2574496ee84a3a",
    "14a7ac2a9d64a8b230b3f5b074cf01996e7f63c21bca68a81996e1cdf9822c580fa5b9489d11e2d311f7d99bbdcc5a5e",
    "a10ecf6ada54f825e920b3dafc7a3cce07f8d1d7161366b74100da67f39883503826692abba43704776ec3a79a1d641",
    "95fc13ab9e92ad4476d6e3eb3a56680f682b4ee96f7d03776df533978f31c1593174e4b4b7865002d6384d168ecdd0a",
};
// y_num: k_(3,0) .. k_(3,15)
constexpr std::array<std::string_view, 16> kYNum = {
    "90d97c81ba24ee0259d1f094980dcfa11ad138e48a869522b52af6c956543d3cd0c7aee9b3ba3c2be9845719707bb33",
    "134996a104ee5811d51036d776fb46831223e96c254f383d0f906343eb67ad34d6c56711962fa8bfe097e75a2e41c696",
    "cc786baa966e66f4a384c86a3b49942552e2d658a31ce2c344be4b91400da7d26d521628b00523b8dfe240c72de1f6",
    "1f86376e8981c217898751ad8746757d42aa7b90eeb791c09e4a3ec03251cf9de405aba9ec61deca6355c77b0e5f4cb",
    "8cc03fdefe0ff135caf4fe2a21529c4195536fbe3ce50b879833fd221351adc2ee7f8dc099040a841b6daecf2e8fedb",
    "16603fca40634b6a2211e11db8f0a6a074a7d0d4afadb7bd76505c3d3ad5544e203f6326c95a807299b23ab13633a5f0",
    "4ab0b9bcfac1bbcb2c977d027796b3ce75bb8ca2be184cb5231413c4d634f3747a87ac2460f415ec961f8855fe9d6f2",
    "987c8d5333ab86fde9926bd2ca6c674170a05bfe3bdd81ffd038da6c26c842642f64550fedfe935a15e4ca31870fb29",
    "9fc4018bd96684be88c9e221e4da1bb8f3abd16679dc26c1e8b6e6a1f20cabe69d65201c78607a360370e577bdba587",
    "e1bba7a1186bdb5223abde7ada14a23c42a0ca7915af6fe06985e7ed1e4d43b9b3f7055dd4eba6f2bafaaebca731c30",
    "19713e47937cd1be0dfd0b8f1d43fb93cd2fcbcb6caf493fd1183e416389e61031bf3a5cce3fbafce813711ad011c132",
    "18b46a908f36f6deb918c143fed2edcc523559b8aaf0c2462e6bfe7f911f643249d9cdf41b44d606ce07c8a4d0074d8e",
    "b182cac101b9399d155096004f53f447aa7b12a3426b08ec02710e807b4633f06c851c1919211f20d4c04f00b971ef8",
    "245a394ad1eca9b72fc00ae7be315dc757b3b080d4c158013e6632d3c40659cc6cf90ad1c232a6442d9d3f5db980133",
    "5c129645e44cf1102a159f748c4a3fc5e673d81d7e86568d9ab0f5d396a7ce46ba1049b6579afb7866b1e715475224b",
    "15e6be4e990f03ce4ea50b3b42df2eb5cb181d8f84965a3957add4fa95af01b2b665027efec01c7704b456be69c8b604",
};
// y_den: k_(4,0) .. k_(4,14); the leading coefficient is 1
constexpr std::array<std::string_view, 15> kYDen = {
    "16112c4c3a9c98b252181140fad0eae9601a6de578980be6eec3232b5be72e7a07f3688ef60c206d01479253b03663c1",
    "1962d75c2381201e1a0cbd6c43c348b885c84ff731c4d59ca4a10356f453e01f78a4260763529e3532f6102c2e49a03d",
    "58df3306640da276faaae7d6e8eb15778c4855551ae7f310c35a5dd279cd2eca6757cd636f96f891e2538b53dbf67f2",
    "16b7d288798e5395f20d23bf89edb4d1d115c5dbddbcd30e123da489e726af41727364f2c28297ada8d26d98445f5416",
    "be0e079545f43e4b00cc912f8228ddcc6d19c9f0f69bbb0542eda0fc9dec916a20b15dc0fd2ededda39142311a5001d",
    "8d9e5297186db2d9fb266eaac783182b70152c65550d881c5ecd87b6f0f5a6449f38db9dfa9cce202c6477faaf9b7ac",
    "166007c08a99db2fc3ba8734ace9824b5eecfdfa8d0cf8ef5dd365bc400a0051d5fa9c01a58b1fb93d1a1399126a775c",
    "16a3ef08be3ea7ea03bcddfabba6ff6ee5a4375efa1f4fd7feb34fd206357132b920f5b00801dee460ee415a15812ed9",
    "1866c8ed336c61231a1be54fd1d74cc4f9fb0ce4c6af5920abc5750c4bf39b4852cfe2f7bb9248836b233d9d55535d4a",
    "167a55cda70a6e1cea820597d94a84903216f763e13d87bb5308592e7ea7d4fbc7385ea3d529b35e346ef48bb8913f55",
    "4d2f259eea405bd48f010a01ad2911d9c6dd039bb61a6290e591b36e636a5c871a5c29f4f83060400f8b49cba8f6aa8",
    "accbb67481d033ff5852c1e48c50c477f94ff8aefce42d28c0f9a88cea7913516f968986f7ebbea9684b529e2561092",
    "ad6b9514c767fe3c3613144b45f1496543346d98adf02267d5ceef9a00d9b8693000763e3b90ac11e99b138573345cc",
    "2660400eb2e4f3b628bdd0d53cd76f2bf565b94e72927c1cb748df27942480e420517bd8714cc80d1fadc1326ed06f7",
    "e0fa1d816ddc03e6b24255e0d7819c171c40f65e273b853324efcd6356caa205ca2f570f13497804415473a1d634b8f",
};
// clang-format on

// E': y'^2 = x'^3 + A' x' + B' and Z, RFC 9380 §8.8.1 (same source).
constexpr std::string_view kA =
    "144698a3b8e9433d693a02c96d4982b0ea985383ee66a8d8e8981aefd881ac98936f8da0e0f97f5cf428082d584c1"
    "d";
constexpr std::string_view kB =
    "12e2908d11688030018b12e8753eee3b2016c1f0f24f4070a0b9c14fcef35ef55a23215a316ceaa5d1cc48e98e172b"
    "e0";
constexpr std::uint64_t kZ = 11;

using curve_detail::fp_from_hex;

template <std::size_t N>
std::array<Fp, N + 1> monic(const std::array<std::string_view, N>& low) {
  std::array<Fp, N + 1> out;
  for (std::size_t i = 0; i < N; ++i) out[i] = fp_from_hex(low[i]);
  out[N] = Fp::one();
  return out;
}

template <std::size_t N>
std::array<Fp, N> parse_all(const std::array<std::string_view, N>& hex) {
  std::array<Fp, N> out;
  for (std::size_t i = 0; i < N; ++i) out[i] = fp_from_hex(hex[i]);
  return out;
}

struct MapConstants {
  Fp a, b, z;
  Fp sqrt_minus_z;  // c2 of sqrt_ratio_3mod4; which root does not matter (sgn0 fixes y)
  std::array<Fp, 12> x_num;
  std::array<Fp, 11> x_den;
  std::array<Fp, 16> y_num;
  std::array<Fp, 16> y_den;
};

// Built once, on first use (thread-safe static initialisation).
const MapConstants& map_constants() {
  static const MapConstants k = [] {
    MapConstants c;
    c.a = fp_from_hex(kA);
    c.b = fp_from_hex(kB);
    c.z = Fp::from_u64(kZ);
    const std::optional<Fp> root = (-c.z).sqrt();  // exists: Z is a non-square and p ≡ 3 mod 4
    if (!root) std::abort();
    c.sqrt_minus_z = *root;
    c.x_num = parse_all(kXNum);
    c.x_den = monic(kXDen);
    c.y_num = parse_all(kYNum);
    c.y_den = monic(kYDen);
    return c;
  }();
  return k;
}

// (p - 3) / 4 = p >> 2 (p ≡ 3 mod 4), the exponent of sqrt_ratio_3mod4. Public.
constexpr std::array<std::uint64_t, 6> kSqrtRatioExponent = [] {
  std::array<std::uint64_t, 6> e{};
  const auto& p = FpParams::kModulus;
  for (std::size_t i = 0; i < 6; ++i) e[i] = (p[i] >> 2) | (i + 1 < 6 ? p[i + 1] << 62 : 0);
  return e;
}();

// ---- Field helpers --------------------------------------------------------------------------

// Big-endian bytes of any length as an integer reduced mod F's modulus: Horner's rule over
// 24-byte chunks, each < 2^192 < r < p and therefore already a canonical encoding, so the
// reduction is ordinary constant-time field arithmetic. (from_bytes cannot refuse a chunk;
// its validity branch always goes the same way.)
template <typename F>
F from_be_bytes_reduced(ByteView bytes) {
  constexpr std::size_t kChunk = 24;
  typename F::Encoded radix_bytes{};
  radix_bytes[F::kBytes - 1 - kChunk] = 1;  // 2^192
  const F radix = *F::from_bytes(radix_bytes);
  F acc = F::zero();
  std::size_t take = bytes.size() % kChunk == 0 ? kChunk : bytes.size() % kChunk;
  for (std::size_t pos = 0; pos < bytes.size(); pos += take, take = kChunk) {
    typename F::Encoded chunk{};
    std::copy_n(bytes.begin() + pos, take, chunk.end() - take);
    acc = acc * radix + *F::from_bytes(chunk);
  }
  return acc;
}

// sgn0 for p ≡ 3 mod 4 (m = 1): the parity of the canonical integer (RFC 9380 §4.1).
bool sgn0(const Fp& a) { return (a.to_bytes().back() & 1) == 1; }

struct SqrtRatio {
  bool is_square;  // u/v is a square
  Fp root;         // sqrt(u/v) if so, else sqrt(Z·u/v)
};

// sqrt_ratio_3mod4(u, v) for v != 0, RFC 9380 Appendix F.2.1.2: one fixed exponentiation and a
// select, no branch on u or v.
SqrtRatio sqrt_ratio(const Fp& u, const Fp& v) {
  const Fp uv = u * v;
  const Fp y1 = (v.square() * uv).pow(kSqrtRatioExponent) * uv;
  const Fp y2 = y1 * map_constants().sqrt_minus_z;
  const bool is_square = y1.square() * v == u;
  return {is_square, Fp::select(y2, y1, is_square)};
}

// sum_i c[i] · xn^i · xd^(deg - i) with deg = M - 1, which is xd^deg · c(xn / xd): a rational
// map evaluated at x = xn / xd without dividing. xd_pow[k] = xd^k.
template <std::size_t M>
Fp homogeneous_horner(const std::array<Fp, M>& c, const Fp& xn, const std::array<Fp, 16>& xd_pow) {
  static_assert(M >= 1 && M <= 16);
  constexpr std::size_t kDeg = M - 1;
  Fp acc = c[kDeg];
  for (std::size_t i = kDeg; i-- > 0;) acc = acc * xn + c[i] * xd_pow[kDeg - i];
  return acc;
}

}  // namespace

// ---- expand_message_xmd and hash_to_field -------------------------------------------------

std::optional<Bytes> expand_message_xmd(ByteView msg, ByteView dst, std::size_t len_in_bytes) {
  constexpr std::size_t kHashBytes = 32;   // b_in_bytes of SHA-256
  constexpr std::size_t kBlockBytes = 64;  // s_in_bytes of SHA-256
  const std::size_t ell = (len_in_bytes + kHashBytes - 1) / kHashBytes;
  if (ell > 255 || len_in_bytes > 65535) return std::nullopt;

  crypto::Sha256 sha;
  Hash256 hashed_dst;
  if (dst.size() > 255) {  // §5.3.3
    hashed_dst = sha.update(as_bytes("H2C-OVERSIZE-DST-")).update(dst).finish();
    dst = hashed_dst;
  }
  const std::array<std::uint8_t, 1> dst_len = {static_cast<std::uint8_t>(dst.size())};
  const auto add_dst_prime = [&] { sha.update(dst).update(dst_len); };  // DST || I2OSP(len, 1)

  static constexpr std::array<std::uint8_t, kBlockBytes> kZPad{};
  const std::array<std::uint8_t, 3> len_and_zero = {static_cast<std::uint8_t>(len_in_bytes >> 8),
                                                    static_cast<std::uint8_t>(len_in_bytes), 0};
  sha.update(kZPad).update(msg).update(len_and_zero);
  add_dst_prime();
  const Hash256 b0 = sha.finish();

  // b_1 = H(b_0 || 1 || DST'), b_i = H((b_0 xor b_(i-1)) || i || DST'); starting from an all-zero
  // b_prev makes the first step the same code.
  Bytes out;
  out.reserve(ell * kHashBytes);
  Hash256 b_prev{};
  for (std::size_t i = 1; i <= ell; ++i) {
    Hash256 chained;
    for (std::size_t j = 0; j < kHashBytes; ++j) chained[j] = b0[j] ^ b_prev[j];
    const std::array<std::uint8_t, 1> index = {static_cast<std::uint8_t>(i)};
    sha.update(chained).update(index);
    add_dst_prime();
    b_prev = sha.finish();
    out.insert(out.end(), b_prev.begin(), b_prev.end());
  }
  out.resize(len_in_bytes);
  return out;
}

std::array<Fp, 2> hash_to_fp(ByteView msg, ByteView dst) {
  constexpr std::size_t kL = 64;  // ceil((381 + 128) / 8)
  // 128 bytes is within every limit and every DST length is accepted, so this never fails.
  const Bytes uniform = *expand_message_xmd(msg, dst, 2 * kL);
  const ByteView bytes(uniform);
  return {from_be_bytes_reduced<Fp>(bytes.first(kL)), from_be_bytes_reduced<Fp>(bytes.last(kL))};
}

Fr hash_to_scalar(ByteView msg, ByteView dst) {
  constexpr std::size_t kL = 48;  // ceil((255 + 128) / 8)
  const Bytes uniform = *expand_message_xmd(msg, dst, kL);
  return from_be_bytes_reduced<Fr>(uniform);
}

Fr scalar_from_wide_bytes(ByteView bytes) { return from_be_bytes_reduced<Fr>(bytes); }

// ---- map_to_curve -------------------------------------------------------------------------

G1Affine map_to_curve_g1(const Fp& u) {
  const MapConstants& k = map_constants();

  // Simplified SWU on E' (RFC 9380 §6.6.2, straight-line form of Appendix F.2), with x kept as
  // the fraction xn / xd so that the isogeny below needs the only inversion.
  const Fp tv1 = k.z * u.square();                            // Z u^2
  const Fp tv2 = tv1.square() + tv1;                          // Z^2 u^4 + Z u^2
  const Fp tv3 = k.b * (tv2 + Fp::one());                     // x1 numerator
  const Fp xd = k.a * Fp::select(k.z, -tv2, !tv2.is_zero());  // x1 denominator (never 0)
  const Fp xd2 = xd.square();
  const Fp gxd = xd2 * xd;
  const Fp gxn = (tv3.square() + k.a * xd2) * tv3 + k.b * gxd;  // g(x1) = gxn / gxd
  const SqrtRatio r = sqrt_ratio(gxn, gxd);
  // g(x1) square: (x1, sqrt g(x1)); else x2 = Z u^2 x1 with sqrt g(x2) = Z u^2 · u · r.root.
  const Fp xn = Fp::select(tv1 * tv3, tv3, r.is_square);
  Fp y = Fp::select(tv1 * u * r.root, r.root, r.is_square);
  y = Fp::select(-y, y, sgn0(u) == sgn0(y));

  // The 11-isogeny (Appendix E.2) at x' = xn / xd: x = x_num / x_den = N1 / (D1 xd) and
  // y = y' y_num / y_den = y' N3 / D3 with N1 = xd^11 x_num(x'), D1 = xd^10 x_den(x'),
  // N3 = xd^15 y_num(x'), D3 = xd^15 y_den(x'); one inversion of D1 xd D3 gives both.
  std::array<Fp, 16> xd_pow;
  xd_pow[0] = Fp::one();
  for (std::size_t i = 1; i < xd_pow.size(); ++i) xd_pow[i] = xd_pow[i - 1] * xd;
  const Fp n1 = homogeneous_horner(k.x_num, xn, xd_pow);
  const Fp d1 = homogeneous_horner(k.x_den, xn, xd_pow);
  const Fp n3 = homogeneous_horner(k.y_num, xn, xd_pow);
  const Fp d3 = homogeneous_horner(k.y_den, xn, xd_pow);
  const Fp d1_xd = d1 * xd;
  const Fp den = d1_xd * d3;
  // A zero denominator means x' is in the isogeny's kernel, whose image is the point at
  // infinity; inverse() maps 0 to 0, so x and y come out 0 then, and no branch is needed.
  const Fp inv = den.inverse();
  G1Affine out;
  out.x = n1 * d3 * inv;
  out.y = y * n3 * d1_xd * inv;
  out.infinity = den.is_zero();
  return out;
}

// ---- hash_to_curve ------------------------------------------------------------------------

G1 hash_to_g1(ByteView msg, ByteView dst) {
  const std::array<Fp, 2> u = hash_to_fp(msg, dst);
  // map_to_curve_g1 only returns points of E, which from_affine merely re-checks; a refusal would
  // be a bug here, not a property of the input, so it stops the program rather than return.
  const std::optional<G1> q0 = G1::from_affine(map_to_curve_g1(u[0]));
  const std::optional<G1> q1 = G1::from_affine(map_to_curve_g1(u[1]));
  if (!q0 || !q1) std::abort();
  // clear_cofactor: [h_eff](Q0 + Q1), h_eff public, so the variable-time multiplication is fine.
  static constexpr std::array<std::uint64_t, 1> kHEff = {0xd201000000010001};
  return (*q0 + *q1).mul_vartime(kHEff);
}

}  // namespace mchain::abe
