// libFuzzer target for the canonical decoders. Every input goes to Package::decode, to each
// record decoder, to the block and proof decoders and to the peer message decoder; whatever decodes must re-encode to the
// input byte for byte, since ids and signatures are computed over encodings that must have
// exactly one form.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "chain/block/block.h"
#include "chain/block/merkle.h"
#include "chain/node/messages.h"
#include "chain/package/package.h"
#include "chain/package/records.h"
#include "chain/package/validate.h"
#include "chain/package/view.h"

namespace {

using namespace mchain;

[[noreturn]] void die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s\n", what, detail.c_str());
  std::abort();
}

template <class Decoded>
void check_round_trip(const char* what, ByteView input, const Result<Decoded>& decoded) {
  if (!decoded) return;
  const Bytes again = decoded->encode();
  if (!std::ranges::equal(again, input)) {
    die(what, "decoded, but re-encodes differently\n  input:      " + to_hex(input) +
                  "\n  re-encoded: " + to_hex(again));
  }
}

// Validation against an empty view decodes the body and checks it against the header, then
// stops at the unknown node before any signature check: cheap, and it reaches decode_body.
const MemoryView& empty_view() {
  static const MemoryView view;
  return view;
}

}  // namespace

// Make UBSan findings crashes that libFuzzer keeps, not log lines it ignores.
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

// Most inputs make the decoders throw, and with stack-use-after-return detection on, ASan
// collects its fake stacks on every throw: ~70% of the run time, a 4x slower fuzzer. The
// environment's ASAN_OPTIONS still override this.
extern "C" const char* __asan_default_options() { return "detect_stack_use_after_return=0"; }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);

  const Result<Package> package = Package::decode(input);
  check_round_trip("Package", input, package);
  if (package) {
    // The id is computed from the input's bytes while decoding; it must be the digest of
    // the decoded content, or signatures would cover something other than what is stored.
    if (package->content().digest() != package->id()) {
      die("Package", "id differs from the digest of the decoded content: " + to_hex(input));
    }
    ValidationOptions options;
    options.check_timestamp = false;
    (void)validate(*package, empty_view(), options);
  }

  check_round_trip("DataRecord", input, DataRecord::decode(input, size));
  check_round_trip("PolicyRecord", input, PolicyRecord::decode(input));
  check_round_trip("BindingRecord", input, BindingRecord::decode(input));
  check_round_trip("KeyLinkRecord", input, KeyLinkRecord::decode(input));
  check_round_trip("MembershipRecord", input, MembershipRecord::decode(input));
  check_round_trip("SemiFinishedBlock", input, SemiFinishedBlock::decode(input));
  check_round_trip("Block", input, Block::decode(input));
  check_round_trip("MerkleProof", input, MerkleProof::decode(input));
  // Everything a peer sends: proposals, marks, accusations, status, blocks, catch-up.
  if (auto message = decode_message(input)) {
    const Bytes again = encode_message(*message);
    if (!std::ranges::equal(again, input))
      die("Message", "re-encodes differently: " + to_hex(input));
  }
  return 0;
}
