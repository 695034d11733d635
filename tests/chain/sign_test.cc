#include "chain/crypto/sign.h"

#include <gtest/gtest.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chain/crypto/hash.h"
#include "chain/crypto/openssl_util.h"
#include "test_util.h"

using mchain::as_bytes;
using mchain::Bytes;
using mchain::ByteView;
using mchain::to_hex;
using mchain::crypto::PrivateKey;
using mchain::crypto::PublicKey;
using mchain::crypto::SigAlg;
using mchain::crypto::Signature;
namespace crypto = mchain::crypto;
namespace detail = mchain::crypto::detail;
using mchain::testing::base64;
using mchain::testing::hex;
using mchain::testing::must;

namespace {

Bytes concat(ByteView a, ByteView b) {
  Bytes out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// SEC1 compressed form of (Qx, Qy): 02 or 03 by the parity of Qy, then Qx.
Bytes compressed(std::string_view qx, std::string_view qy) {
  Bytes y = hex(qy);
  Bytes out{static_cast<std::uint8_t>((y.back() & 1) ? 0x03 : 0x02)};
  Bytes x = hex(qx);
  out.insert(out.end(), x.begin(), x.end());
  return out;
}

// The P-256 group order from OpenSSL, so the test does not depend on a hand-copied constant.
detail::BnPtr p256_order() {
  detail::EcGroupPtr group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  return detail::BnPtr(BN_dup(EC_GROUP_get0_order(group.get())));
}

// n - s, 32 bytes big-endian.
Bytes order_minus(ByteView s) {
  detail::BnPtr n = p256_order();
  detail::BnPtr sb(BN_bin2bn(s.data(), static_cast<int>(s.size()), nullptr));
  detail::BnPtr out(BN_new());
  EXPECT_EQ(BN_sub(out.get(), n.get(), sb.get()), 1);
  Bytes bytes(32);
  EXPECT_EQ(BN_bn2binpad(out.get(), bytes.data(), 32), 32);
  return bytes;
}

bool is_high(ByteView s) {
  detail::BnPtr n = p256_order();
  detail::BnPtr half(BN_new());
  BN_rshift1(half.get(), n.get());
  detail::BnPtr sb(BN_bin2bn(s.data(), static_cast<int>(s.size()), nullptr));
  return BN_cmp(sb.get(), half.get()) > 0;
}

Signature ecdsa_sig(ByteView r, ByteView s) { return {SigAlg::ecdsa_p256_sha256, concat(r, s)}; }

detail::PkeyPtr foreign_key(const char* type, const char* curve = nullptr) {
  EVP_PKEY* key = nullptr;
  if (curve != nullptr) {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve);
  } else if (std::string_view(type) == "RSA") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, type, static_cast<std::size_t>(1024));
  } else {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  }
  EXPECT_NE(key, nullptr);
  return detail::PkeyPtr(key);
}

template <class Write>
std::string write_pem(Write write) {
  detail::BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(write(bio.get()), 1);
  return detail::bio_contents(bio.get());
}

std::string public_pem(EVP_PKEY* key) {
  return write_pem([&](BIO* b) { return PEM_write_bio_PUBKEY(b, key); });
}

std::string private_pem(EVP_PKEY* key) {
  return write_pem([&](BIO* b) {
    return PEM_write_bio_PKCS8PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

const SigAlg kAllAlgs[] = {SigAlg::ecdsa_p256_sha256, SigAlg::ed25519};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Ed25519 known answers: RFC 8032 section 7.1, TEST 1, TEST 2 and TEST 3.

struct Ed25519Vector {
  const char* name;
  const char* secret_key;
  const char* public_key;
  const char* message;
  const char* signature;
};

const Ed25519Vector kRfc8032Vectors[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

TEST(Ed25519Kat, Rfc8032SecretKeyGivesPublicKeyAndExactSignature) {
  for (const auto& v : kRfc8032Vectors) {
    SCOPED_TRACE(v.name);
    auto key = PrivateKey::from_pem(mchain::testing::ed25519_pkcs8_pem(hex(v.secret_key)));
    ASSERT_TRUE(key.has_value()) << key.error().message;
    EXPECT_EQ(key->alg(), SigAlg::ed25519);
    EXPECT_EQ(to_hex(key->public_key().raw()), v.public_key);

    const Bytes message = hex(v.message);
    auto sig = key->sign(message);
    ASSERT_TRUE(sig.has_value()) << sig.error().message;
    EXPECT_EQ(sig->alg, SigAlg::ed25519);
    EXPECT_EQ(to_hex(sig->bytes), v.signature);
    EXPECT_TRUE(key->public_key().verify(message, *sig));
  }
}

TEST(Ed25519Kat, Rfc8032VerifyFromRawPublicKeyAndTamperFails) {
  for (const auto& v : kRfc8032Vectors) {
    SCOPED_TRACE(v.name);
    PublicKey pub = must(PublicKey::from_raw(SigAlg::ed25519, hex(v.public_key)));
    const Bytes message = hex(v.message);
    const Signature sig{SigAlg::ed25519, hex(v.signature)};
    EXPECT_TRUE(pub.verify(message, sig));

    Bytes longer = message;
    longer.push_back(0x00);
    EXPECT_FALSE(pub.verify(longer, sig));
    if (!message.empty()) {
      Bytes flipped = message;
      flipped[0] ^= 0x01;
      EXPECT_FALSE(pub.verify(flipped, sig));
    }
    for (std::size_t byte : {0u, 31u, 32u, 63u}) {
      Signature bad = sig;
      bad.bytes[byte] ^= 0x80;
      EXPECT_FALSE(pub.verify(message, bad)) << "flipped signature byte " << byte;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ECDSA P-256/SHA-256 known answers: NIST CAVP 186-3ecdsatestvectors, SigVer.rsp, section
// [P-256,SHA-256] (values as in that file; Result P = valid, F = invalid).

struct SigVerVector {
  const char* msg;
  const char* qx;
  const char* qy;
  const char* r;
  const char* s;
  bool valid;
  const char* note;
};

const SigVerVector kSigVer[] = {
    {"e1130af6a38ccb412a9c8d13e15dbfc9e69a16385af3c3f1e5da954fd5e7c45f"
     "d75e2b8c36699228e92840c0562fbf3772f07e17f1add56588dd45f7450e1217"
     "ad239922dd9c32695dc71ff2424ca0dec1321aa47064a044b7fe3c2b97d03ce4"
     "70a592304c5ef21eed9f93da56bb232d1eeb0035f9bf0dfafdcc4606272b20a3",
     "e424dc61d4bb3cb7ef4344a7f8957a0c5134e16f7a67c074f82e6e12f49abf3c",
     "970eed7aa2bc48651545949de1dddaf0127e5965ac85d1243d6f60e7dfaee927",
     "bf96b99aa49c705c910be33142017c642ff540c76349b9dab72f981fd9347f4f",
     "17c55095819089c2e03b9cd415abdf12444e323075d98f31920b9e0f57ec871c", true, "P (0 )"},
    {"73c5f6a67456ae48209b5f85d1e7de7758bf235300c6ae2bdceb1dcb27a7730f"
     "b68c950b7fcada0ecc4661d3578230f225a875e69aaa17f1e71c6be5c831f226"
     "63bac63d0c7a9635edb0043ff8c6f26470f02a7bc56556f1437f06dfa27b487a"
     "6c4290d8bad38d4879b334e341ba092dde4e4ae694a9c09302e2dbf443581c08",
     "e0fc6a6f50e1c57475673ee54e3a57f9a49f3328e743bf52f335e3eeaa3d2864",
     "7f59d689c91e463607d9194d99faf316e25432870816dde63f5d4b373f12f22a",
     "1d75830cd36f4c9aa181b2c4221e87f176b7f05b7c87824e82e396c88315c407",
     "cb2acb01dac96efc53a32d4a0d85d0c2e48955214783ecf50a4f0414a319c05a", true, "P (0 )"},
    {"60cd64b2cd2be6c33859b94875120361a24085f3765cb8b2bf11e026fa9d8855"
     "dbe435acf7882e84f3c7857f96e2baab4d9afe4588e4a82e17a78827bfdb5ddb"
     "d1c211fbc2e6d884cddd7cb9d90d5bf4a7311b83f352508033812c776a0e00c0"
     "03c7e0d628e50736c7512df0acfa9f2320bd102229f46495ae6d0857cc452a84",
     "2d98ea01f754d34bbc3003df5050200abf445ec728556d7ed7d5c54c55552b6d",
     "9b52672742d637a32add056dfd6d8792f2a33c2e69dafabea09b960bc61e230a",
     "06108e525f845d0155bf60193222b3219c98e3d49424c2fb2a0987f825c17959",
     "62b5cdd591e5b507e560167ba8f6f7cda74673eb315680cb89ccbc4eec477dce", true, "P (0 )"},
    {"1669bfb657fdc62c3ddd63269787fc1c969f1850fb04c933dda063ef74a56ce1"
     "3e3a649700820f0061efabf849a85d474326c8a541d99830eea8131eaea584f2"
     "2d88c353965dabcdc4bf6b55949fd529507dfb803ab6b480cd73ca0ba00ca19c"
     "438849e2cea262a1c57d8f81cd257fb58e19dec7904da97d8386e87b84948169",
     "69b7667056e1e11d6caf6e45643f8b21e7a4bebda463c7fdbc13bc98efbd0214",
     "d3f9b12eb46c7c6fda0da3fc85bc1fd831557f9abc902a3be3cb3e8be7d1aa2f",
     "288f7a1cd391842cce21f00e6f15471c04dc182fe4b14d92dc18910879799790",
     "247b3c4e89a3bcadfea73c7bfd361def43715fa382b8c3edf4ae15d6e55e9979", false,
     "F (1 - Message changed)"},
    {"983a71b9994d95e876d84d28946a041f8f0a3f544cfcc055496580f1dfd4e312"
     "a2ad418fe69dbc61db230cc0c0ed97e360abab7d6ff4b81ee970a7e97466acfd"
     "9644f828ffec538abc383d0e92326d1c88c55e1f46a668a039beaa1be631a891"
     "29938c00a81a3ae46d4aecbf9707f764dbaccea3ef7665e4c4307fa0b0a3075c",
     "224a4d65b958f6d6afb2904863efd2a734b31798884801fcab5a590f4d6da9de",
     "178d51fddada62806f097aa615d33b8f2404e6b1479f5fd4859d595734d6d2b9",
     "87b93ee2fecfda54deb8dff8e426f3c72c8864991f8ec2b3205bb3b416de93d2",
     "4044a24df85be0cc76f21a4430b75b8e77b932a87f51e4eccbc45c263ebf8f66", false,
     "F (2 - R changed)"},
    {"3fe60dd9ad6caccf5a6f583b3ae65953563446c4510b70da115ffaa0ba04c076"
     "115c7043ab8733403cd69c7d14c212c655c07b43a7c71b9a4cffe22c2684788e"
     "c6870dc2013f269172c822256f9e7cc674791bf2d8486c0f5684283e1649576e"
     "fc982ede17c7b74b214754d70402fb4bb45ad086cf2cf76b3d63f7fce39ac970",
     "bf02cbcf6d8cc26e91766d8af0b164fc5968535e84c158eb3bc4e2d79c3cc682",
     "069ba6cb06b49d60812066afa16ecf7b51352f2c03bd93ec220822b1f3dfba03",
     "f5acb06c59c2b4927fb852faa07faf4b1852bbb5d06840935e849c4d293d1bad",
     "049dab79c89cc02f1484c437f523e080a75f134917fda752f2d5ca397addfe5d", false,
     "F (3 - S changed)"},
    {"e4796db5f785f207aa30d311693b3702821dff1168fd2e04c0836825aefd850d"
     "9aa60326d88cde1a23c7745351392ca2288d632c264f197d05cd424a30336c19"
     "fd09bb229654f0222fcb881a4b35c290a093ac159ce13409111ff0358411133c"
     "24f5b8e2090d6db6558afc36f06ca1f6ef779785adba68db27a409859fc4c4a0",
     "87f8f2b218f49845f6f10eec3877136269f5c1a54736dbdf69f89940cad41555",
     "e15f369036f49842fac7a86c8a2b0557609776814448b8f5e84aa9f4395205e9",
     "d19ff48b324915576416097d2544f7cbdf8768b1454ad20e0baac50e211f23b0",
     "a3e81e59311cdfff2d4784949f7a2cb50ba6c3a91fa54710568e61aca3e847c6", false,
     "F (3 - S changed)"},
};

TEST(EcdsaP256Kat, CavpSigVer) {
  int high_s_valid = 0;
  int invalid = 0;
  for (const auto& v : kSigVer) {
    SCOPED_TRACE(std::string(v.qx) + " " + v.note);
    PublicKey pub = must(PublicKey::from_raw(SigAlg::ecdsa_p256_sha256, compressed(v.qx, v.qy)));
    const Bytes msg = hex(v.msg);
    const Bytes r = hex(v.r);
    const Bytes s = hex(v.s);
    if (!v.valid) {
      ++invalid;
      // Neither encoding of the pair may verify.
      EXPECT_FALSE(pub.verify(msg, ecdsa_sig(r, s)));
      EXPECT_FALSE(pub.verify(msg, ecdsa_sig(r, order_minus(s))));
      continue;
    }
    if (is_high(s)) {
      // Valid in FIPS terms, but the chain accepts only the low-s form.
      ++high_s_valid;
      EXPECT_FALSE(pub.verify(msg, ecdsa_sig(r, s)));
      EXPECT_TRUE(pub.verify(msg, ecdsa_sig(r, order_minus(s))));
    } else {
      EXPECT_TRUE(pub.verify(msg, ecdsa_sig(r, s)));
      EXPECT_FALSE(pub.verify(msg, ecdsa_sig(r, order_minus(s))));
    }
  }
  EXPECT_EQ(high_s_valid, 1);
  EXPECT_EQ(invalid, 4);
}

TEST(EcdsaP256Kat, CavpPublicKeyRawIsCompressedInput) {
  const auto& v = kSigVer[0];
  Bytes raw = compressed(v.qx, v.qy);
  PublicKey pub = must(PublicKey::from_raw(SigAlg::ecdsa_p256_sha256, raw));
  EXPECT_EQ(pub.raw(), raw);
  EXPECT_EQ(pub.raw().size(), 33u);
}

// RFC 6979 appendix A.2.5 (P-256), SHA-256, message "sample": deterministic (r, s) with a high
// s, so only (r, n - s) is accepted here.
TEST(EcdsaP256Kat, Rfc6979SampleSha256) {
  PublicKey pub = must(PublicKey::from_raw(
      SigAlg::ecdsa_p256_sha256,
      compressed("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6",
                 "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299")));
  const Bytes r = hex("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716");
  const Bytes s = hex("F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8");
  ASSERT_TRUE(is_high(s));
  EXPECT_FALSE(pub.verify(as_bytes("sample"), ecdsa_sig(r, s)));
  EXPECT_TRUE(pub.verify(as_bytes("sample"), ecdsa_sig(r, order_minus(s))));
  EXPECT_FALSE(pub.verify(as_bytes("samplf"), ecdsa_sig(r, order_minus(s))));
}

// ---------------------------------------------------------------------------------------------
// Round trips and negative tests.

TEST(SignAlgNames, StringsAndCodes) {
  EXPECT_EQ(crypto::to_string(SigAlg::ecdsa_p256_sha256), "ecdsa-p256-sha256");
  EXPECT_EQ(crypto::to_string(SigAlg::ed25519), "ed25519");
  for (SigAlg alg : kAllAlgs) {
    EXPECT_EQ(crypto::sig_alg_from_string(crypto::to_string(alg)), alg);
    EXPECT_EQ(crypto::sig_alg_from_code(static_cast<std::uint64_t>(alg)), alg);
  }
  EXPECT_EQ(crypto::sig_alg_from_code(1), SigAlg::ecdsa_p256_sha256);
  EXPECT_EQ(crypto::sig_alg_from_code(2), SigAlg::ed25519);
  EXPECT_FALSE(crypto::sig_alg_from_code(0));
  EXPECT_FALSE(crypto::sig_alg_from_code(3));
  EXPECT_FALSE(crypto::sig_alg_from_code(0x100000001ull));
  EXPECT_FALSE(crypto::sig_alg_from_string(""));
  EXPECT_FALSE(crypto::sig_alg_from_string("Ed25519"));
  EXPECT_FALSE(crypto::sig_alg_from_string("ecdsa"));
}

TEST(SignRoundTrip, BothAlgorithms) {
  for (SigAlg alg : kAllAlgs) {
    SCOPED_TRACE(std::string(crypto::to_string(alg)));
    PrivateKey key = must(PrivateKey::generate(alg));
    EXPECT_EQ(key.alg(), alg);
    EXPECT_EQ(key.public_key().raw().size(), alg == SigAlg::ed25519 ? 32u : 33u);
    const crypto::Signer& signer = key;
    auto sig = signer.sign(as_bytes("block header"));
    ASSERT_TRUE(sig.has_value()) << sig.error().message;
    EXPECT_EQ(sig->alg, alg);
    EXPECT_EQ(sig->bytes.size(), 64u);
    EXPECT_TRUE(signer.public_key().verify(as_bytes("block header"), *sig));
    EXPECT_FALSE(signer.public_key().verify(as_bytes("block headeR"), *sig));
    auto empty_sig = key.sign({});
    ASSERT_TRUE(empty_sig.has_value());
    EXPECT_TRUE(key.public_key().verify({}, *empty_sig));
  }
}

TEST(SignRoundTrip, EcdsaSignaturesAreAlwaysLowS) {
  PrivateKey key = must(PrivateKey::generate(SigAlg::ecdsa_p256_sha256));
  // About half of raw ECDSA signatures have a high s, so 64 exercise the normalisation.
  for (int i = 0; i < 64; ++i) {
    Bytes msg{static_cast<std::uint8_t>(i)};
    auto sig = key.sign(msg);
    ASSERT_TRUE(sig.has_value());
    ByteView s = ByteView(sig->bytes).last(32);
    ASSERT_FALSE(is_high(s)) << "signature " << i;
    ASSERT_TRUE(key.public_key().verify(msg, *sig));
    // The other encoding of the same signature is refused.
    EXPECT_FALSE(
        key.public_key().verify(msg, ecdsa_sig(ByteView(sig->bytes).first(32), order_minus(s))));
  }
}

TEST(SignNegative, WrongKeyFails) {
  for (SigAlg alg : kAllAlgs) {
    PrivateKey a = must(PrivateKey::generate(alg));
    PrivateKey b = must(PrivateKey::generate(alg));
    auto sig = a.sign(as_bytes("m"));
    ASSERT_TRUE(sig.has_value());
    EXPECT_FALSE(b.public_key().verify(as_bytes("m"), *sig));
  }
}

TEST(SignNegative, WrongAlgorithmTagFails) {
  for (SigAlg alg : kAllAlgs) {
    PrivateKey key = must(PrivateKey::generate(alg));
    auto sig = key.sign(as_bytes("m"));
    ASSERT_TRUE(sig.has_value());
    Signature relabelled = *sig;
    relabelled.alg = alg == SigAlg::ed25519 ? SigAlg::ecdsa_p256_sha256 : SigAlg::ed25519;
    EXPECT_FALSE(key.public_key().verify(as_bytes("m"), relabelled));
  }
}

TEST(SignNegative, TruncatedOrExtendedSignatureFails) {
  for (SigAlg alg : kAllAlgs) {
    PrivateKey key = must(PrivateKey::generate(alg));
    auto sig = key.sign(as_bytes("m"));
    ASSERT_TRUE(sig.has_value());
    Signature shorter = *sig;
    shorter.bytes.pop_back();
    EXPECT_FALSE(key.public_key().verify(as_bytes("m"), shorter));
    Signature longer = *sig;
    longer.bytes.push_back(0);
    EXPECT_FALSE(key.public_key().verify(as_bytes("m"), longer));
    EXPECT_FALSE(key.public_key().verify(as_bytes("m"), Signature{alg, {}}));
  }
}

TEST(SignNegative, EcdsaOutOfRangeScalarsFail) {
  PrivateKey key = must(PrivateKey::generate(SigAlg::ecdsa_p256_sha256));
  auto sig = key.sign(as_bytes("m"));
  ASSERT_TRUE(sig.has_value());
  const Bytes r(sig->bytes.begin(), sig->bytes.begin() + 32);
  const Bytes s(sig->bytes.begin() + 32, sig->bytes.end());
  const Bytes zero(32, 0);
  Bytes n(32);
  ASSERT_EQ(BN_bn2binpad(p256_order().get(), n.data(), 32), 32);
  const PublicKey& pub = key.public_key();
  EXPECT_FALSE(pub.verify(as_bytes("m"), ecdsa_sig(zero, s)));
  EXPECT_FALSE(pub.verify(as_bytes("m"), ecdsa_sig(r, zero)));
  EXPECT_FALSE(pub.verify(as_bytes("m"), ecdsa_sig(n, s)));
  EXPECT_FALSE(pub.verify(as_bytes("m"), ecdsa_sig(r, n)));
  EXPECT_FALSE(pub.verify(as_bytes("m"), ecdsa_sig(Bytes(32, 0xff), s)));
}

TEST(SignNegative, FromRawRejectsGarbage) {
  const auto& v = kSigVer[0];
  const Bytes good = compressed(v.qx, v.qy);
  const SigAlg ec = SigAlg::ecdsa_p256_sha256;
  ASSERT_TRUE(PublicKey::from_raw(ec, good).has_value());

  EXPECT_FALSE(PublicKey::from_raw(ec, {}).has_value());
  EXPECT_FALSE(PublicKey::from_raw(ec, Bytes{0x00}).has_value());  // SEC1 point at infinity
  EXPECT_FALSE(PublicKey::from_raw(ec, ByteView(good).first(32)).has_value());
  EXPECT_FALSE(PublicKey::from_raw(ec, concat(good, Bytes{0})).has_value());
  // The same (valid) point in uncompressed form is refused: one key, one encoding.
  const Bytes uncompressed = concat(concat(Bytes{0x04}, hex(v.qx)), hex(v.qy));
  auto err = PublicKey::from_raw(ec, uncompressed);
  ASSERT_FALSE(err.has_value());
  EXPECT_NE(err.error().message.find("compressed"), std::string::npos) << err.error().message;
  Bytes wrong_prefix = good;
  for (std::uint8_t prefix : {0x00, 0x01, 0x04, 0x05, 0x06, 0x07}) {
    wrong_prefix[0] = prefix;
    EXPECT_FALSE(PublicKey::from_raw(ec, wrong_prefix).has_value()) << int{prefix};
  }
  EXPECT_FALSE(PublicKey::from_raw(ec, Bytes(33, 0)).has_value());
  // x >= p cannot be a coordinate (0xff..ff exceeds the P-256 field prime).
  EXPECT_FALSE(PublicKey::from_raw(ec, concat(Bytes{0x02}, Bytes(32, 0xff))).has_value());

  // Roughly half of all x have no point on the curve: expect both outcomes among 32 candidates,
  // and every accepted one to keep its exact encoding.
  int accepted = 0;
  int rejected = 0;
  for (std::uint8_t i = 1; i <= 32; ++i) {
    Bytes candidate(33, 0);
    candidate[0] = 0x02;
    candidate[32] = i;
    auto key = PublicKey::from_raw(ec, candidate);
    if (key) {
      ++accepted;
      EXPECT_EQ(key->raw(), candidate);
    } else {
      ++rejected;
    }
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);

  EXPECT_FALSE(PublicKey::from_raw(SigAlg::ed25519, Bytes(31, 1)).has_value());
  EXPECT_FALSE(PublicKey::from_raw(SigAlg::ed25519, Bytes(33, 1)).has_value());
  EXPECT_FALSE(PublicKey::from_raw(SigAlg::ed25519, {}).has_value());
  EXPECT_FALSE(PublicKey::from_raw(static_cast<SigAlg>(7), Bytes(32, 1)).has_value());
}

TEST(SignPem, PublicAndPrivateRoundTrip) {
  for (SigAlg alg : kAllAlgs) {
    SCOPED_TRACE(std::string(crypto::to_string(alg)));
    PrivateKey key = must(PrivateKey::generate(alg));

    std::string pub_pem = key.public_key().pem();
    EXPECT_EQ(pub_pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u) << pub_pem;
    PublicKey pub = must(PublicKey::from_pem(pub_pem));
    EXPECT_EQ(pub, key.public_key());
    EXPECT_EQ(pub.pem(), pub_pem);

    std::string priv_pem = key.pem();
    EXPECT_EQ(priv_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
    PrivateKey again = must(PrivateKey::from_pem(priv_pem));
    EXPECT_EQ(again.public_key(), key.public_key());
    auto sig = again.sign(as_bytes("m"));
    ASSERT_TRUE(sig.has_value());
    EXPECT_TRUE(key.public_key().verify(as_bytes("m"), *sig));
  }
}

TEST(SignPem, RejectsOtherKeyTypesWithClearErrors) {
  struct Foreign {
    const char* type;
    const char* curve;
    const char* expect_in_error;
  };
  for (const Foreign& f : {Foreign{"EC", "P-384", "secp384r1"}, Foreign{"ED448", nullptr, "ED448"},
                           Foreign{"RSA", nullptr, "RSA"}, Foreign{"X25519", nullptr, "X25519"}}) {
    SCOPED_TRACE(f.type);
    detail::PkeyPtr key = foreign_key(f.type, f.curve);
    ASSERT_TRUE(key);
    auto pub = PublicKey::from_pem(public_pem(key.get()));
    ASSERT_FALSE(pub.has_value());
    EXPECT_NE(pub.error().message.find(f.expect_in_error), std::string::npos)
        << pub.error().message;
    EXPECT_NE(pub.error().message.find("P-256 and Ed25519"), std::string::npos);
    auto priv = PrivateKey::from_pem(private_pem(key.get()));
    ASSERT_FALSE(priv.has_value());
    EXPECT_NE(priv.error().message.find(f.expect_in_error), std::string::npos)
        << priv.error().message;
  }
}

TEST(SignPem, RejectsWrongBlocksAndGarbage) {
  PrivateKey key = must(PrivateKey::generate(SigAlg::ecdsa_p256_sha256));
  // A private key where a public key is expected, and the reverse.
  auto pub = PublicKey::from_pem(key.pem());
  ASSERT_FALSE(pub.has_value());
  EXPECT_NE(pub.error().message.find("PRIVATE KEY"), std::string::npos) << pub.error().message;
  auto priv = PrivateKey::from_pem(key.public_key().pem());
  ASSERT_FALSE(priv.has_value());
  EXPECT_NE(priv.error().message.find("PUBLIC KEY"), std::string::npos) << priv.error().message;

  for (std::string_view garbage : {"", "hello", "-----BEGIN PUBLIC KEY-----\n!!!\n"}) {
    EXPECT_FALSE(PublicKey::from_pem(garbage).has_value()) << garbage;
    EXPECT_FALSE(PrivateKey::from_pem(garbage).has_value()) << garbage;
  }
  auto not_pem = PrivateKey::from_pem("just text");
  ASSERT_FALSE(not_pem.has_value());
  EXPECT_NE(not_pem.error().message.find("not a PEM"), std::string::npos);

  // A well-formed PEM block whose body is not a key.
  const std::string bogus =
      "-----BEGIN PUBLIC KEY-----\n" + base64(as_bytes("not DER")) + "\n-----END PUBLIC KEY-----\n";
  EXPECT_FALSE(PublicKey::from_pem(bogus).has_value());
}

TEST(SignPem, RejectsEncryptedAndTraditionalPrivateKeys) {
  detail::PkeyPtr key = foreign_key("EC", "P-256");
  ASSERT_TRUE(key);
  // Sanity: the same key as unencrypted PKCS#8 is accepted.
  ASSERT_TRUE(PrivateKey::from_pem(private_pem(key.get())).has_value());

  std::string encrypted = write_pem([&](BIO* b) {
    static char password[] = "password";
    return PEM_write_bio_PKCS8PrivateKey(b, key.get(), EVP_aes_256_cbc(), password,
                                         static_cast<int>(sizeof password - 1), nullptr, nullptr);
  });
  auto enc = PrivateKey::from_pem(encrypted);
  ASSERT_FALSE(enc.has_value());
  EXPECT_NE(enc.error().message.find("encrypted"), std::string::npos) << enc.error().message;

  std::string traditional = write_pem([&](BIO* b) {
    return PEM_write_bio_PrivateKey_traditional(b, key.get(), nullptr, nullptr, 0, nullptr,
                                                nullptr);
  });
  auto trad = PrivateKey::from_pem(traditional);
  ASSERT_FALSE(trad.has_value());
  EXPECT_NE(trad.error().message.find("PKCS#8"), std::string::npos) << trad.error().message;
}

TEST(SignKeys, FingerprintIsStableAndDefined) {
  for (SigAlg alg : kAllAlgs) {
    PrivateKey key = must(PrivateKey::generate(alg));
    const PublicKey& pub = key.public_key();
    Bytes input{static_cast<std::uint8_t>(alg)};
    input.insert(input.end(), pub.raw().begin(), pub.raw().end());
    EXPECT_EQ(pub.fingerprint(), crypto::sha256(input));
    EXPECT_EQ(pub.fingerprint(), pub.fingerprint());
    EXPECT_EQ(must(PublicKey::from_pem(pub.pem())).fingerprint(), pub.fingerprint());
    EXPECT_EQ(must(PublicKey::from_raw(alg, pub.raw())).fingerprint(), pub.fingerprint());
    PrivateKey other = must(PrivateKey::generate(alg));
    EXPECT_NE(other.public_key().fingerprint(), pub.fingerprint());
  }
  // Layout check on a fixed key (RFC 8032 TEST 1): algorithm code 02, then the raw key.
  const std::string raw_hex = kRfc8032Vectors[0].public_key;
  PublicKey rfc = must(PublicKey::from_raw(SigAlg::ed25519, hex(raw_hex)));
  EXPECT_EQ(rfc.fingerprint(), crypto::sha256(hex("02" + raw_hex)));
}

TEST(SignKeys, PublicKeyCopySemantics) {
  std::optional<PrivateKey> key = must(PrivateKey::generate(SigAlg::ecdsa_p256_sha256));
  auto sig = key->sign(as_bytes("m"));
  ASSERT_TRUE(sig.has_value());

  PublicKey copy = key->public_key();
  EXPECT_EQ(copy, key->public_key());
  PublicKey assigned =
      must(PublicKey::from_raw(SigAlg::ed25519, hex(kRfc8032Vectors[0].public_key)));
  EXPECT_NE(assigned, copy);
  assigned = copy;
  EXPECT_EQ(assigned, copy);
  EXPECT_EQ(assigned.alg(), SigAlg::ecdsa_p256_sha256);

  // Copies outlive the private key and keep working.
  key.reset();
  EXPECT_TRUE(copy.verify(as_bytes("m"), *sig));
  EXPECT_TRUE(assigned.verify(as_bytes("m"), *sig));

  PublicKey moved = std::move(copy);
  EXPECT_TRUE(moved.verify(as_bytes("m"), *sig));
}

TEST(SignKeys, PrivateKeyMoveSemantics) {
  PrivateKey key = must(PrivateKey::generate(SigAlg::ed25519));
  const PublicKey pub = key.public_key();
  PrivateKey moved = std::move(key);
  auto sig = moved.sign(as_bytes("m"));
  ASSERT_TRUE(sig.has_value());
  EXPECT_TRUE(pub.verify(as_bytes("m"), *sig));
  PrivateKey target = must(PrivateKey::generate(SigAlg::ecdsa_p256_sha256));
  target = std::move(moved);
  EXPECT_EQ(target.public_key(), pub);
  EXPECT_EQ(target.alg(), SigAlg::ed25519);
}

TEST(SignKeys, ConcurrentVerifyOnOneSharedKey) {
  for (SigAlg alg : kAllAlgs) {
    SCOPED_TRACE(std::string(crypto::to_string(alg)));
    PrivateKey key = must(PrivateKey::generate(alg));
    const PublicKey& pub = key.public_key();
    auto good = key.sign(as_bytes("good"));
    ASSERT_TRUE(good.has_value());
    std::atomic<int> errors{0};
    auto worker = [&] {
      for (int i = 0; i < 200; ++i) {
        if (!pub.verify(as_bytes("good"), *good)) ++errors;
        if (pub.verify(as_bytes("bad"), *good)) ++errors;
      }
    };
    std::thread t1(worker);
    std::thread t2(worker);
    t1.join();
    t2.join();
    EXPECT_EQ(errors.load(), 0);
  }
}
