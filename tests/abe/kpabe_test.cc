// KP-ABE (abe/kpabe/kpabe.h): who can open what (truth tables over AND, OR, thresholds, nesting,
// repeated leaves and numeric comparisons), collusion, other authorities, tampering, encodings.
#include "abe/kpabe/kpabe.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mchain::abe::kp {
namespace {

AccessTree policy(std::string_view text) {
  Result<AccessTree> tree = parse_policy(text);
  EXPECT_TRUE(tree) << text << ": " << (tree ? "" : tree.error().message);
  return *tree;
}

AttributeSet attributes(std::string_view text) {
  Result<AttributeSet> set = parse_attributes(text);
  EXPECT_TRUE(set) << text << ": " << (set ? "" : set.error().message);
  return *set;
}

class KpAbeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    authority_ = new Authority(setup());
    other_ = new Authority(setup());
  }
  static void TearDownTestSuite() {
    delete authority_;
    delete other_;
  }

  static UserKey key_for(std::string_view text, const Authority& a = *authority_) {
    Result<UserKey> key = keygen(a.public_key, a.secret_key, policy(text));
    EXPECT_TRUE(key);
    return *key;
  }

  // Whether a key for `key_policy` opens an encapsulation to `set`, checking that it recovers
  // exactly the encapsulated key when it claims to.
  static bool opens(std::string_view key_policy, std::string_view set) {
    const UserKey key = key_for(key_policy);
    Result<Encapsulation> kem = encapsulate(authority_->public_key, attributes(set));
    EXPECT_TRUE(kem);
    Result<crypto::AeadKey> got = decapsulate(key, kem->ciphertext);
    if (!got) {
      EXPECT_NE(got.error().message.find("access denied"), std::string::npos)
          << got.error().message;
      return false;
    }
    EXPECT_EQ(*got, kem->key) << key_policy << " over " << set;
    return *got == kem->key;
  }

  static inline Authority* authority_ = nullptr;
  static inline Authority* other_ = nullptr;
};

TEST_F(KpAbeTest, TruthTables) {
  struct Case {
    const char* policy;
    const char* set;
    bool opens;
  };
  const Case cases[] = {
      {"a and b", "a, b", true},
      {"a and b", "a, b, c", true},
      {"a and b", "a", false},
      {"a and b", "b, c", false},
      {"a or b", "a", true},
      {"a or b", "b", true},
      {"a or b", "c", false},
      {"2 of (a, b, c)", "a, b", true},
      {"2 of (a, b, c)", "a, c", true},
      {"2 of (a, b, c)", "b, c", true},
      {"2 of (a, b, c)", "a, b, c", true},
      {"2 of (a, b, c)", "c", false},
      // Arity 4 and 5 gates: Lagrange coefficients beyond two children.
      {"3 of (a, b, c, d)", "b, c, d", true},
      {"3 of (a, b, c, d)", "a, d", false},
      {"4 of (a, b, c, d, e)", "a, c, d, e", true},
      {"4 of (a, b, c, d, e)", "a, b, c", false},
      {"(tenant:acme and role:auditor) or 2 of (a, b, c)", "tenant:acme, role:auditor", true},
      {"(tenant:acme and role:auditor) or 2 of (a, b, c)", "tenant:acme, b, c", true},
      {"(tenant:acme and role:auditor) or 2 of (a, b, c)", "tenant:acme, a", false},
      {"a and 2 of (b or c, d and e, f)", "a, c, f", true},
      {"a and 2 of (b or c, d and e, f)", "a, d, f", false},
      {"a and 2 of (b or c, d and e, f)", "a, d, e, b", true},
      // The same attribute in two leaves, and attributes the set repeats.
      {"a and (a or b)", "a", true},
      {"2 of (a, a, b)", "a", true},
      {"2 of (a, b, b)", "b", true},
      {"2 of (a, b, b)", "c", false},
      {"a and b", "a, a, b, b", true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(opens(c.policy, c.set), c.opens) << c.policy << " over {" << c.set << "}";
  }
}

TEST_F(KpAbeTest, NumericComparisonsThroughTheScheme) {
  // Every value of a 3-bit number against `level >= 5` and `level in {2-4}`: the bit attributes
  // go through hashing, encapsulation and decapsulation, not only the policy layer.
  for (unsigned level = 0; level < 8; ++level) {
    const std::string set = "vm:x, level = " + std::to_string(level) + "#3";
    EXPECT_EQ(opens("vm:x and level >= 5#3", set), level >= 5) << level;
    EXPECT_EQ(opens("level in {2#3-4#3}", set), level >= 2 && level <= 4) << level;
  }
  // A value at another width is another number.
  EXPECT_FALSE(opens("level >= 1#8", "level = 5#3"));
}

TEST_F(KpAbeTest, RefusalSaysWhichPartOfThePolicyIsUnmet) {
  const UserKey key = key_for("tenant:acme and role:auditor");
  Result<Encapsulation> kem = encapsulate(authority_->public_key, attributes("tenant:acme"));
  ASSERT_TRUE(kem);
  Result<crypto::AeadKey> got = decapsulate(key, kem->ciphertext);
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().message.find("role:auditor"), std::string::npos) << got.error().message;
}

TEST_F(KpAbeTest, CollusionFails) {
  // Neither "a and c" nor "b and d" opens {a, b}; a key stitched from the a-leaf of one and the
  // b-leaf of the other has the right shape but shares of two different polynomials.
  const UserKey first = key_for("a and c");
  const UserKey second = key_for("b and d");
  Result<Encapsulation> kem = encapsulate(authority_->public_key, attributes("a, b"));
  ASSERT_TRUE(kem);
  EXPECT_FALSE(decapsulate(first, kem->ciphertext));
  EXPECT_FALSE(decapsulate(second, kem->ciphertext));

  UserKey stitched{authority_->public_key.id(), policy("a and b"), {}};
  stitched.leaves = {first.leaves[0], second.leaves[0]};
  Result<crypto::AeadKey> got = decapsulate(stitched, kem->ciphertext);
  ASSERT_TRUE(got);           // the shape satisfies the policy...
  EXPECT_NE(*got, kem->key);  // ...but the shares do not recombine to y

  // Control: the same stitching from one key's own leaves works.
  const UserKey honest = key_for("a and b");
  UserKey restitched{authority_->public_key.id(), policy("a and b"), honest.leaves};
  EXPECT_EQ(decapsulate(restitched, kem->ciphertext), kem->key);
}

TEST_F(KpAbeTest, OtherAuthorityFails) {
  const UserKey foreign = key_for("a", *other_);
  Result<Encapsulation> kem = encapsulate(authority_->public_key, attributes("a"));
  ASSERT_TRUE(kem);
  Result<crypto::AeadKey> got = decapsulate(foreign, kem->ciphertext);
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().message.find("another ABE authority"), std::string::npos);

  // Relabelled as ours, the foreign key still yields a wrong key.
  UserKey relabelled = foreign;
  relabelled.authority = authority_->public_key.id();
  got = decapsulate(relabelled, kem->ciphertext);
  ASSERT_TRUE(got);
  EXPECT_NE(*got, kem->key);

  // keygen refuses a master secret of another authority.
  EXPECT_FALSE(keygen(authority_->public_key, other_->secret_key, policy("a")));
}

TEST_F(KpAbeTest, HybridRoundTripAndEveryTamperedByteFails) {
  const std::string message = "measurement report";
  const Bytes aad = {1, 2, 3};
  Result<Bytes> sealed =
      encrypt(authority_->public_key, attributes("vm:1"), as_bytes(message), aad);
  ASSERT_TRUE(sealed);
  const UserKey key = key_for("vm:1");
  Result<Bytes> opened = decrypt(key, *sealed, aad);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(as_chars(*opened), message);
  EXPECT_EQ(sealed_attributes(*sealed), attributes("vm:1"));

  EXPECT_FALSE(decrypt(key, *sealed, {}));  // other associated data
  for (std::size_t i = 0; i < sealed->size(); ++i) {
    for (std::uint8_t flip : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
      Bytes changed = *sealed;
      changed[i] ^= flip;
      EXPECT_FALSE(decrypt(key, changed, aad)) << "byte " << i << " ^ " << int{flip};
    }
  }
  Bytes truncated(sealed->begin(), sealed->end() - 1);
  EXPECT_FALSE(decrypt(key, truncated, aad));
}

TEST_F(KpAbeTest, EncodingsRoundTrip) {
  const MasterPublicKey& mpk = authority_->public_key;
  Result<MasterPublicKey> mpk2 = MasterPublicKey::decode(mpk.encode());
  ASSERT_TRUE(mpk2);
  EXPECT_EQ(mpk2->id(), mpk.id());
  Result<MasterSecretKey> msk2 = MasterSecretKey::decode(authority_->secret_key.encode());
  ASSERT_TRUE(msk2);
  EXPECT_EQ(msk2->y, authority_->secret_key.y);

  const UserKey key = key_for("(a and b) or 2 of (c, d, e)");
  Result<UserKey> key2 = UserKey::decode(key.encode());
  ASSERT_TRUE(key2) << key2.error().message;
  EXPECT_EQ(key2->encode(), key.encode());

  Result<Encapsulation> kem = encapsulate(mpk, attributes("c, e, level = 3#4"));
  ASSERT_TRUE(kem);
  Result<Ciphertext> ct2 = Ciphertext::decode(kem->ciphertext.encode());
  ASSERT_TRUE(ct2) << ct2.error().message;
  EXPECT_EQ(decapsulate(*key2, *ct2), kem->key);

  // A decoded MPK from another setup encapsulates for that authority only.
  Result<Encapsulation> foreign =
      encapsulate(*MasterPublicKey::decode(other_->public_key.encode()), attributes("c, e"));
  ASSERT_TRUE(foreign);
  EXPECT_FALSE(decapsulate(key, foreign->ciphertext));
}

TEST_F(KpAbeTest, DecodersRefuseBadInput) {
  const Bytes mpk = authority_->public_key.encode();
  EXPECT_FALSE(MasterPublicKey::decode(Bytes(mpk.begin(), mpk.end() - 1)));
  Bytes bad_point = mpk;
  bad_point[5] ^= 0x04;  // inside g1's x coordinate: off the curve or out of the subgroup
  EXPECT_FALSE(MasterPublicKey::decode(bad_point));

  // A key whose leaf count differs from its tree.
  UserKey key = key_for("a and b");
  key.leaves.pop_back();
  Result<UserKey> short_key = UserKey::decode(key.encode());
  ASSERT_FALSE(short_key);
  EXPECT_NE(short_key.error().message.find("leaves"), std::string::npos);

  // A ciphertext with a C_a missing, or with the identity as C'.
  Result<Encapsulation> kem = encapsulate(authority_->public_key, attributes("a, b"));
  ASSERT_TRUE(kem);
  Ciphertext ct = kem->ciphertext;
  ct.c_attributes.pop_back();
  EXPECT_FALSE(Ciphertext::decode(ct.encode()));
  ct = kem->ciphertext;
  ct.c_prime = G2::identity();
  EXPECT_FALSE(Ciphertext::decode(ct.encode()));

  EXPECT_FALSE(encapsulate(authority_->public_key, AttributeSet{}));
}

}  // namespace
}  // namespace mchain::abe::kp
