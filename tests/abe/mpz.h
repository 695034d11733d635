// GMP's mpz_t as a value type, for the abe tests that check our arithmetic against GMP.
#pragma once

#include <gmp.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace mchain::abe::testing {

// Owns one mpz_t.
class Mpz {
 public:
  Mpz() { mpz_init(v_); }
  explicit Mpz(const char* hex) { mpz_init_set_str(v_, hex, 16); }
  Mpz(const Mpz& o) { mpz_init_set(v_, o.v_); }
  Mpz& operator=(const Mpz& o) {
    mpz_set(v_, o.v_);
    return *this;
  }
  ~Mpz() { mpz_clear(v_); }
  mpz_ptr get() { return v_; }
  mpz_srcptr get() const { return v_; }

  std::string hex() const {
    std::vector<char> buf(mpz_sizeinbase(v_, 16) + 2);
    mpz_get_str(buf.data(), 16, v_);
    return "0x" + std::string(buf.data());
  }
  // The value as little-endian 64-bit limbs, for the public-exponent pow functions.
  std::vector<std::uint64_t> limbs() const {
    std::vector<std::uint64_t> out((mpz_sizeinbase(v_, 2) + 63) / 64);
    std::size_t count = 0;
    mpz_export(out.data(), &count, -1, sizeof(std::uint64_t), 0, 0, v_);
    out.resize(count);
    return out;
  }
  friend bool operator==(const Mpz& a, const Mpz& b) { return mpz_cmp(a.v_, b.v_) == 0; }
  friend std::ostream& operator<<(std::ostream& os, const Mpz& x) { return os << x.hex(); }

 private:
  mpz_t v_;
};

}  // namespace mchain::abe::testing
