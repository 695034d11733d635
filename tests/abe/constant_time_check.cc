// The constant-time claims of abe/ (issue 7: no branch and no memory access that depends on a
// secret), checked with valgrind's memcheck the way ctgrind does it: each secret input is marked
// undefined, the operation runs, and memcheck reports any conditional jump or any address that
// depends on it ("Conditional jump or move depends on uninitialised value(s)", "Use of
// uninitialised value"). The results are marked defined again before they are used, since what
// is computed from a secret is the caller's to protect.
//
//   valgrind --error-exitcode=1 abe_constant_time_check check     # must report nothing
//   valgrind abe_constant_time_check control                     # must report a leak
//
// The control runs the variable-time multiplication on a secret scalar: it shows that the harness
// sees a secret-dependent branch when there is one. Outside valgrind the marks do nothing.
#include <valgrind/memcheck.h>

#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include "abe/cpabe/cpabe.h"
#include "abe/cpabe/internal.h"
#include "abe/kpabe/kpabe.h"
#include "abe/pairing/bls12_381.h"

namespace mchain::abe {
namespace {

template <typename T>
void secret(T& value) {
  VALGRIND_MAKE_MEM_UNDEFINED(&value, sizeof value);
}
template <typename T>
void secret(std::vector<T>& values) {
  for (T& v : values) secret(v);
}
// A result computed from secrets, now to be used (compared, encoded, printed) by the check.
template <typename T>
void declassify(T& value) {
  VALGRIND_MAKE_MEM_DEFINED(&value, sizeof value);
}
template <typename T>
void declassify(std::vector<T>& values) {
  for (T& v : values) declassify(v);
}

// Keeps the compiler from dropping a computation whose result is otherwise unused.
template <typename T>
void use(T& value) {
  declassify(value);
  asm volatile("" : : "r"(&value) : "memory");
}

void step(const char* name) { std::printf("  %s\n", name); }

void check_fields() {
  Fr a = random_scalar(), b = random_scalar();
  secret(a);
  secret(b);
  step("Fr: add, sub, neg, mul, square, inverse, to_bytes");
  Fr sum = a + b, difference = a - b, negated = -a, product = a * b, squared = a.square();
  Fr inverse = a.inverse();
  Fr::Encoded bytes = a.to_bytes();
  use(sum), use(difference), use(negated), use(product), use(squared), use(inverse), use(bytes);

  const G1Affine g = G1::generator().to_affine();
  Fp x = g.x, y = g.y;
  secret(x);
  secret(y);
  step("Fp: mul, square, inverse, is_zero");
  Fp p = x * y, s = x.square(), i = x.inverse();
  bool zero = x.is_zero();
  use(p), use(s), use(i), use(zero);
}

void check_groups() {
  Fr k = random_scalar();
  secret(k);
  step("G1: [k]P (fixed window), [k]g1 (fixed-base table), to_affine");
  G1 p = G1::generator() * k;
  G1 q = cpabe::g1_table().mul(k);
  G1Affine pa = p.to_affine();
  use(p), use(q), use(pa);

  step("G2: [k]Q (fixed window), [k]g2 (fixed-base table), to_affine");
  G2 r = G2::generator() * k;
  G2 t = cpabe::g2_table().mul(k);
  G2Affine ra = r.to_affine();
  use(r), use(t), use(ra);

  step("G1 + G1 and doubling on secret points");
  G1 s1 = G1::generator() * random_scalar();
  G1 s2 = G1::generator() * random_scalar();
  secret(s1);
  secret(s2);
  G1 added = s1 + s2, doubled = s1.doubled();
  use(added), use(doubled);
}

void check_pairing() {
  Fr k = random_scalar();
  G1 p = G1::generator() * random_scalar();
  secret(k);
  secret(p);
  step("pairing(secret P, Q), GT pow(secret k)");
  Gt e = pairing(p, G2::generator());
  Gt y = e.pow(k);
  use(e), use(y);
}

void check_kpabe() {
  const kp::Authority authority = kp::setup();
  kp::MasterSecretKey msk = authority.secret_key;
  secret(msk.y);
  step("KP-ABE keygen with a secret master key");
  auto tree = parse_policy("(a and b) or 2 of (c, d, e)");
  auto key = kp::keygen(authority.public_key, msk, *tree);
  if (!key) {
    std::printf("keygen failed: %s\n", key.error().message.c_str());
    std::exit(2);
  }
  for (auto& leaf : key->leaves) use(leaf);

  step("KP-ABE decapsulation with a secret user key");
  AttributeSet attributes;
  (void)attributes.add("c");
  (void)attributes.add("e");
  auto kem = kp::encapsulate(authority.public_key, attributes);
  if (!kem) std::exit(2);
  kp::UserKey user = *key;
  for (auto& leaf : user.leaves) secret(leaf);
  auto opened = kp::decapsulate(user, kem->ciphertext);
  if (!opened) std::exit(2);
  use(*opened);
}

void check_cpabe() {
  auto system = cpabe::setup({"member", "rank_le_1", "rank_le_2"}, 8);
  if (!system) std::exit(2);
  cpabe::MasterKey mk = system->mk;
  secret(mk.y);
  secret(mk.t.pos), secret(mk.t.neg), secret(mk.t.any), secret(mk.t.bit0), secret(mk.t.bit1);
  step("CP-ABE keygen with a secret master key");
  auto key = cpabe::keygen(mk, {true, false, true});
  if (!key) std::exit(2);
  use(key->d_hat), declassify(key->d), declassify(key->f), declassify(key->bit0),
      declassify(key->bit1);

  step("CP-ABE rekey with a secret master key");
  auto rekeyed = cpabe::rekey(system->pk, mk, cpabe::revocation_set(key->s));
  if (!rekeyed) std::exit(2);
  for (auto& entry : rekeyed->rk.entries) use(entry.factor);

  step("CP-ABE decapsulation with a secret user key");
  auto policy = cpabe::parse_policy(system->pk, "member and not rank_le_1");
  auto kem = cpabe::encapsulate(system->pk, *policy);
  if (!kem) std::exit(2);
  cpabe::UserKey user = *key;
  secret(user.d_hat), secret(user.d), secret(user.f), secret(user.bit0), secret(user.bit1);
  auto opened = cpabe::decapsulate(user, kem->ct);
  if (!opened) std::exit(2);
  use(*opened);
}

// The negative control: a variable-time multiplication by a secret scalar must be reported.
void control() {
  Fr k = random_scalar();
  auto limbs = k.to_bytes();
  secret(limbs);
  std::uint64_t words[4] = {};
  for (std::size_t i = 0; i < 32; ++i)
    words[3 - i / 8] |= std::uint64_t{limbs[i]} << (56 - 8 * (i % 8));
  step("control: mul_vartime by a secret scalar (must be reported)");
  G1 p = G1::generator().mul_vartime(words);
  use(p);
}

}  // namespace
}  // namespace mchain::abe

int main(int argc, char** argv) {
  using namespace mchain::abe;
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "control") {
    control();
    return 0;
  }
  if (mode != "check") {
    std::fprintf(stderr, "usage: abe_constant_time_check check|control (under valgrind)\n");
    return 2;
  }
  std::printf("field kernel: %s\n", detail::kCpuHasBmi2Adx ? "x86-64 mulx/adcx/adox" : "portable");
  check_fields();
  check_groups();
  check_pairing();
  check_kpabe();
  check_cpabe();
  std::printf("done\n");
  return 0;
}
