// Sealing to a node key (chain/crypto/seal.h): the ECDH and HKDF steps against published
// vectors, the key derivation and the whole format against an independent implementation,
// and every rejection the header promises.
#include "chain/crypto/seal.h"

#include <gtest/gtest.h>

#include <string>

#include "chain/crypto/hash.h"
#include "chain/crypto/seal_internal.h"
#include "test_util.h"

namespace mchain::crypto {
namespace {

using mchain::testing::hex;
using mchain::testing::make_key;
using mchain::testing::must;

Bytes text(std::string_view s) {
  ByteView v = as_bytes(s);
  return Bytes(v.begin(), v.end());
}

// NIST CAVP, "ECC CDH Primitive (SP 800-56A Section 5.7.1.2)" test vectors
// (ecccdhtestvectors.zip, KAS_ECC_CDH_PrimitiveTest.txt), [P-256] COUNT = 0.
struct CavpP256Count0 {
  Bytes qcavs =
      hex("04"
          "700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287"    // QCAVSx
          "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac");  // QCAVSy
  Bytes d_iut = hex("7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534");
  Bytes qiut =
      hex("04"
          "ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b230"    // QIUTx
          "28af61281fd35e2fa7002523acc85a429cb06ee6648325389f59edfce1405141");  // QIUTy
  Bytes z_iut = hex("46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b");
};

TEST(SealKat, EcdhP256MatchesNistCavpCdhCount0) {
  CavpP256Count0 v;
  EXPECT_EQ(to_hex(must(detail::ecdh_p256(v.d_iut, v.qcavs))), to_hex(v.z_iut));
}

TEST(SealKat, EcdhRefusesAPeerPointOffTheCurve) {
  CavpP256Count0 v;
  Bytes off = v.qcavs;
  off.back() ^= 0x01;  // same x, another y: not on the curve
  auto z = detail::ecdh_p256(v.d_iut, off);
  ASSERT_FALSE(z);
  EXPECT_NE(z.error().message.find("not a point on P-256"), std::string::npos) << z.error().message;
  EXPECT_FALSE(detail::ecdh_p256(Bytes(32, 0), v.qcavs));  // d = 0 is no key
}

// RFC 5869, appendix A.1 (test case 1) and A.3 (test case 3, empty salt and info).
TEST(SealKat, HkdfSha256MatchesRfc5869Case1) {
  Bytes okm =
      must(hkdf_sha256(hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                               hex("000102030405060708090a0b0c"), hex("f0f1f2f3f4f5f6f7f8f9"), 42));
  EXPECT_EQ(to_hex(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(SealKat, HkdfSha256MatchesRfc5869Case3EmptySaltAndInfo) {
  Bytes okm =
      must(hkdf_sha256(hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), {}, {}, 42));
  EXPECT_EQ(to_hex(okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(SealKat, HkdfRefusesImpossibleLengths) {
  EXPECT_FALSE(hkdf_sha256(hex("0b"), {}, {}, 0));
  EXPECT_FALSE(hkdf_sha256(hex("0b"), {}, {}, 255 * 32 + 1));
  EXPECT_FALSE(hkdf_sha256({}, {}, {}, 32));
}

// The seal key for the CAVP vector's points (QCAVS as the ephemeral key, QIUT as the
// recipient), computed independently with Python's hmac and hashlib modules (HKDF written out
// from RFC 5869) — it pins the info layout of the format.
TEST(SealKat, SealKeyOfTheCavpPoints) {
  CavpP256Count0 v;
  AeadKey key = must(detail::seal_key(v.z_iut, v.qcavs, v.qiut));
  EXPECT_EQ(to_hex(key), "e0bcadef5b2e136871078d9492629aad642dc50f301c958bc56b67531d1f950f");
}

// A message sealed by an independent implementation of docs/seal.md (pyca/cryptography; see
// tests/fixtures/seal/make_interop.py) to the CAVP vector's dIUT, which the PEM below holds.
TEST(SealKat, OpensAMessageSealedByAnotherImplementation) {
  constexpr char kRecipientPem[] =
      "-----BEGIN PRIVATE KEY-----\n"
      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfX3F9x6yndr4DWIU\n"
      "Yy7q4D2QWK8fttIu2AuttivBpTShRANCAATq0hhZARnoh2spFG/4nKYXcMTtu/l9\n"
      "OM44XtKB2KayMCivYSgf014vpwAlI6zIWkKcsG7mZIMlOJ9Z7fzhQFFB\n"
      "-----END PRIVATE KEY-----\n";
  PrivateKey recipient = must(PrivateKey::from_pem(kRecipientPem));
  Bytes sealed = hex(
      "01"
      "04ecad00325a301ddaeec54c4d5deaa2a38f1c302933d6460e499ed515f9b5a516"
      "fdf74b56a2804ebae2e052b44f59714b5637dade1e27a0405a350b1136a81530"
      "000102030405060708090a0b"
      "a55a52c0eee97fbc177da15fce86fdab6dde956b8a2ffc6d3039403ff6c32466e5a05380ce67ce58bc2e28fbc2");
  Bytes aad = text("migrate vm 3a3c3293-93f6-44ec-a622-29180d1234a3 node-1 -> node-2");
  EXPECT_EQ(must(open_sealed(recipient, sealed, aad)), text("stand-in for a VM private key"));
}

// --- seal and open ---------------------------------------------------------------------------

struct Sealed {
  PrivateKey recipient = make_key();
  Bytes plaintext = text("-----BEGIN PRIVATE KEY----- the VM's key, as a stand-in");
  Bytes aad = text("vm 3a3c3293-93f6-44ec-a622-29180d1234a3 from node-1 to node-2");
  Bytes sealed = must(seal(recipient.public_key(), plaintext, aad));
};

TEST(Seal, RoundTrip) {
  Sealed s;
  ASSERT_EQ(s.sealed.size(), kSealOverhead + s.plaintext.size());
  EXPECT_EQ(s.sealed[0], kSealVersion);
  EXPECT_EQ(s.sealed[1], 0x04);
  EXPECT_EQ(must(open_sealed(s.recipient, s.sealed, s.aad)), s.plaintext);
}

TEST(Seal, EmptyPlaintextAndAadRoundTrip) {
  PrivateKey recipient = make_key();
  Bytes sealed = must(seal(recipient.public_key(), {}, {}));
  EXPECT_EQ(sealed.size(), kSealOverhead);
  EXPECT_TRUE(must(open_sealed(recipient, sealed, {})).empty());
}

TEST(Seal, EverySealIsFresh) {
  Sealed s;
  Bytes again = must(seal(s.recipient.public_key(), s.plaintext, s.aad));
  EXPECT_NE(again, s.sealed);
  // Another ephemeral key and another nonce.
  EXPECT_NE(Bytes(again.begin() + 1, again.begin() + 66),
            Bytes(s.sealed.begin() + 1, s.sealed.begin() + 66));
  EXPECT_EQ(must(open_sealed(s.recipient, again, s.aad)), s.plaintext);
}

TEST(Seal, Ed25519KeysCannotSealOrOpen) {
  PrivateKey ed = make_key(SigAlg::ed25519);
  auto sealed = seal(ed.public_key(), text("secret"), {});
  ASSERT_FALSE(sealed);
  EXPECT_EQ(sealed.error().message, "sealing needs a P-256 node key");
  Sealed s;
  auto opened = open_sealed(ed, s.sealed, s.aad);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().message, "sealing needs a P-256 node key");
}

TEST(Seal, RejectsAnotherVersion) {
  Sealed s;
  for (std::uint8_t version : {0, 2, 0xff}) {
    Bytes changed = s.sealed;
    changed[0] = version;
    auto opened = open_sealed(s.recipient, changed, s.aad);
    ASSERT_FALSE(opened);
    EXPECT_NE(opened.error().message.find("version " + std::to_string(version)), std::string::npos)
        << opened.error().message;
  }
}

TEST(Seal, RejectsAnEphemeralPointOffTheCurve) {
  Sealed s;
  Bytes changed = s.sealed;
  changed[65] ^= 0x01;  // the last byte of y: same x, no point of the curve has this y
  auto opened = open_sealed(s.recipient, changed, s.aad);
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("not a point on P-256"), std::string::npos)
      << opened.error().message;

  // (0, 0) is not on the curve either (b is not 0), nor is the all-zero encoding of infinity.
  Bytes zeros = s.sealed;
  std::fill(zeros.begin() + 2, zeros.begin() + 66, 0);
  EXPECT_FALSE(open_sealed(s.recipient, zeros, s.aad));
  zeros[1] = 0x00;
  EXPECT_FALSE(open_sealed(s.recipient, zeros, s.aad));
}

TEST(Seal, RejectsACompressedEphemeralPoint) {
  Sealed s;
  Bytes changed = s.sealed;
  changed[1] = 0x02;
  auto opened = open_sealed(s.recipient, changed, s.aad);
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("uncompressed"), std::string::npos)
      << opened.error().message;
}

TEST(Seal, RejectsEveryTruncation) {
  Sealed s;
  for (std::size_t n = 0; n < s.sealed.size(); ++n) {
    EXPECT_FALSE(open_sealed(s.recipient, ByteView(s.sealed).first(n), s.aad)) << n << " bytes";
  }
  Bytes longer = s.sealed;
  longer.push_back(0);
  EXPECT_FALSE(open_sealed(s.recipient, longer, s.aad));
}

TEST(Seal, RejectsEveryFlippedByte) {
  Sealed s;
  for (std::size_t i = 0; i < s.sealed.size(); ++i) {
    Bytes changed = s.sealed;
    changed[i] ^= 0x80;
    EXPECT_FALSE(open_sealed(s.recipient, changed, s.aad)) << "byte " << i;
  }
}

TEST(Seal, RejectsAnotherRecipientKey) {
  Sealed s;
  PrivateKey other = make_key();
  auto opened = open_sealed(other, s.sealed, s.aad);
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("does not open"), std::string::npos)
      << opened.error().message;
}

TEST(Seal, RejectsOtherAad) {
  Sealed s;
  Bytes other = s.aad;
  other.back() ^= 0x01;
  EXPECT_FALSE(open_sealed(s.recipient, s.sealed, other));
  EXPECT_FALSE(open_sealed(s.recipient, s.sealed, {}));
  Bytes longer = s.aad;
  longer.push_back(0);
  EXPECT_FALSE(open_sealed(s.recipient, s.sealed, longer));
}

}  // namespace
}  // namespace mchain::crypto
