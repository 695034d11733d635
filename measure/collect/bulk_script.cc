#include "measure/collect/bulk_script.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <string_view>

#include "chain/types.h"

namespace mchain::measure::bulk {

namespace {

// '…' quoting: everything is literal inside single quotes except the quote itself.
std::string sh_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

// find -path takes a glob: a stop point named "/etc/a*b" must match only itself.
std::string glob_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

bool is_under(std::string_view path, std::string_view root) {
  if (root == "/") return path.size() > 1 && path.front() == '/';
  return path.size() > root.size() && path.starts_with(root) && path[root.size()] == '/';
}

bool at_or_under(std::string_view path, std::string_view root) {
  return path == root || is_under(path, root);
}

// stat(1) fields, the same in GNU coreutils and busybox: raw mode (hex), inode, links, uid,
// gid, size, device, rdev major and minor (hex), blocks, mtime, ctime, atime.
constexpr std::string_view kStatFormat = "%f %i %h %u %g %s %d %t %T %b %Y %Z %X";

// Runs once per batch of paths that find hands to -exec … {} +. It prints, for the batch:
//   B <n>\n   then the n paths, each NUL-terminated (exact bytes, whatever they contain)
//   S\n       then n lines of stat fields, "-" for a path that vanished since find saw it
//   L\n       then, per symlink, "<index> <target>\n\0" (readlink's line, NUL-terminated: a
//             target may hold a newline but never a NUL; nothing before the NUL if it vanished)
//   per hash: H256\n or H512\n, then either F\n and sha*sum's own "<hex>  <path>" lines for
//             the regular files (when every name in the batch is plain: no newline, CR or
//             backslash, which sha*sum would escape), or P\n and "<index> <hex>  -" or
//             "<index> -" per regular file, hashed one by one from stdin; then ".\n"
// Every loop is linear in the batch (find may hand over tens of thousands of paths at once).
// Records are aligned with paths by position, by length prefix, or by matching the exact path
// the host already knows, so no file name can forge or shift a record.
constexpr std::string_view kBatchScript = R"SH(fl=$1; shift
printf 'B %d\n' $#
printf '%s\0' "$@"
printf 'S\n'
if o=$(stat -c "$MCHAIN_STAT" -- "$@" 2>/dev/null); then printf '%s\n' "$o"
else for f; do stat -c "$MCHAIN_STAT" -- "$f" 2>/dev/null || echo -; done; fi
printf 'L\n'
i=0
for f; do
  if [ -L "$f" ]; then printf '%d ' $i; readlink -- "$f" 2>/dev/null; printf '\0'; fi
  i=$((i+1))
done
plain=1
for f; do case $f in *"$MCHAIN_NL"*|*\\*|*"$MCHAIN_CR"*) plain=0; break;; esac; done
for h in 256 512; do
  case $fl in *$h*) ;; *) continue;; esac
  printf 'H%s\n' $h
  if [ $plain = 1 ]; then
    printf 'F\n'
    for f; do [ -f "$f" ] && [ ! -L "$f" ] && printf '%s\0' "$f"; done |
      xargs -0 -r sha${h}sum -- 2>/dev/null
  else
    printf 'P\n'; i=0
    for f; do
      if [ -f "$f" ] && [ ! -L "$f" ]; then
        printf '%d ' $i; sha${h}sum 2>/dev/null <"$f" || echo -
      fi
      i=$((i+1))
    done
  fi
  printf '.\n'
done
exit 0
)SH";

std::string script_prologue(std::string_view path, bool need_sha256, bool need_sha512,
                            bool need_readlink) {
  std::string s;
  // A fixed PATH and the C locale: the tools the guest's administrator installed, and
  // lengths (${#t}) counted in bytes.
  s += "PATH=" + sh_quote(path) + "; LC_ALL=C; export PATH LC_ALL\n";
  s += "MCHAIN_STAT=" + sh_quote(kStatFormat) + "\n";
  s += "MCHAIN_NL='\n'\nMCHAIN_CR=$(printf '\\r')\n";
  s += "export MCHAIN_STAT MCHAIN_NL MCHAIN_CR\n";
  s += "B=" + sh_quote(kBatchScript) + "\n";
  std::string tools = "find stat head xargs";
  if (need_readlink) tools += " readlink";
  if (need_sha256) tools += " sha256sum";
  if (need_sha512) tools += " sha512sum";
  s += "for t in " + tools + "; do\n";
  s += "  command -v $t >/dev/null 2>&1 || { echo \"mchain: $t not found in the guest\" >&2; "
       "exit 127; }\n";
  s += "done\n";
  return s;
}

// The body runs with stdout into the output cap and stderr into a 64 KiB cap. Its own exit
// status is lost in the pipeline, which is why completeness is judged by the end marker.
std::string script_epilogue(std::size_t max_output) {
  return "( walk 2>&1 1>&3 | head -c 65536 >&2 ) 3>&1 | head -c " + std::to_string(max_output) +
         "\n";
}

std::string find_command(const WalkRoot& root, std::string_view action) {
  std::string s = "find " + sh_quote(root.path);
  if (root.depth >= 0) s += " -maxdepth " + std::to_string(root.depth);
  if (!root.prunes.empty()) {
    s += " \\(";
    for (std::size_t i = 0; i < root.prunes.size(); ++i) {
      if (i) s += " -o";
      s += " -path " + sh_quote(glob_escape(root.prunes[i]));
    }
    s += " \\) -prune -o";
  }
  s += " ";
  s += action;
  s += " </dev/null";
  return s;
}

// A cursor over the script's output. Running out of bytes is not an error (the output may
// have been cut at the cap); anything else out of shape is.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}

  bool at_end() const { return pos_ == data_.size(); }
  std::size_t offset() const { return pos_; }
  std::optional<char> peek() const {
    if (at_end()) return std::nullopt;
    return data_[pos_];
  }

  // The bytes up to the next `end` (which is consumed), or nullopt when the data ends first.
  std::optional<std::string_view> until(char end) {
    std::size_t at = data_.find(end, pos_);
    if (at == std::string_view::npos) return std::nullopt;
    std::string_view out = data_.substr(pos_, at - pos_);
    pos_ = at + 1;
    return out;
  }
  std::optional<std::string_view> line() { return until('\n'); }
  std::optional<std::string_view> take(std::size_t n) {
    if (data_.size() - pos_ < n) return std::nullopt;
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

// Signals "the output stopped here": not an error, the batch will be split.
struct Cut {};

class Parser {
 public:
  Parser(const std::vector<WalkRoot>& roots, std::string_view output)
      : roots_(roots), in_(output) {}

  Result<ParsedOutput> run() {
    ParsedOutput out;
    std::string error;
    try {
      for (std::size_t r = 0; r < roots_.size(); ++r) {
        expect_line("R " + std::to_string(r), "the start of root " + std::to_string(r));
        RootOutput root;
        for (;;) {
          std::string_view l = need(in_.line());
          if (l.starts_with("B ")) {
            batch(roots_[r], number<std::size_t>(l.substr(2), "batch size"), root);
          } else if (l.starts_with("E ")) {
            std::string_view rest = l.substr(2);
            std::size_t space = rest.find(' ');
            if (space == std::string_view::npos ||
                number<std::size_t>(rest.substr(0, space), "root index") != r) {
              bad("expected \"E " + std::to_string(r) + " <status>\"");
            }
            root.find_status = number<int>(rest.substr(space + 1), "find status");
            break;
          } else {
            bad("expected a batch or the end of root " + std::to_string(r));
          }
        }
        out.roots.push_back(std::move(root));
      }
      expect_line("X", "the end marker");
      if (!in_.at_end()) bad("unexpected output after the end marker");
      out.complete = true;
    } catch (const Cut&) {
      out.complete = false;
    } catch (const std::string& message) {
      error = message;
    }
    if (!error.empty()) return fail("guest script output: " + error);
    return out;
  }

 private:
  template <class T>
  T need(std::optional<T> v) {
    if (!v) throw Cut{};
    return *v;
  }

  [[noreturn]] void bad(const std::string& what) {
    throw std::string(what + " at byte " + std::to_string(in_.offset()));
  }

  void expect_line(const std::string& text, const std::string& what) {
    if (need(in_.line()) != text) bad("expected " + what);
  }

  template <class T>
  T number(std::string_view s, std::string_view what, int base = 10) {
    T value{};
    bool negative_ok = std::is_signed_v<T>;
    if (s.empty() || (!negative_ok && s.front() == '-')) {
      bad("bad " + std::string(what) + " \"" + std::string(s) + "\"");
    }
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
    if (ec != std::errc() || p != s.data() + s.size()) {
      bad("bad " + std::string(what) + " \"" + std::string(s) + "\"");
    }
    return value;
  }

  void batch(const WalkRoot& root, std::size_t n, RootOutput& out) {
    if (n == 0) bad("empty batch");
    std::size_t first = out.entries.size();
    for (std::size_t i = 0; i < n; ++i) {
      RawEntry e;
      e.path = std::string(need(in_.until('\0')));
      if (!at_or_under(e.path, root.path)) bad("path outside " + root.path);
      out.entries.push_back(std::move(e));
    }
    std::span<RawEntry> entries(out.entries.data() + first, n);
    expect_line("S", "the stat section");
    for (RawEntry& e : entries) stat_line(need(in_.line()), e);
    expect_line("L", "the symlink section");
    while (in_.peek() && *in_.peek() >= '0' && *in_.peek() <= '9') {
      auto index = number<std::size_t>(need(in_.until(' ')), "symlink index");
      if (index >= n) bad("symlink index out of range");
      std::string_view target = need(in_.until('\0'));
      if (target.empty()) continue;  // vanished before readlink ran
      if (!target.ends_with('\n')) bad("symlink target without readlink's newline");
      target.remove_suffix(1);
      entries[index].record.link_target = std::string(target);
    }
    while (in_.peek() && *in_.peek() == 'H') {
      std::string_view h = need(in_.line());
      bool is256 = h == "H256";
      if (!is256 && h != "H512") bad("unknown hash section");
      if ((is256 && !root.sha256) || (!is256 && !root.sha512)) bad("unrequested hash section");
      std::string_view mode = need(in_.line());
      if (mode != "F" && mode != "P") bad("expected F or P");
      const std::size_t digest_hex = is256 ? 64 : 128;
      std::size_t next = 0;  // digests come in batch order, for a subset of the entries
      for (;;) {
        std::string_view l = need(in_.line());
        if (l == ".") break;
        std::size_t k = n;
        std::string_view hex;
        if (mode == "F") {
          // "<hex>  <path>": the path must be one of the entries still ahead.
          if (l.size() < digest_hex + 3 || l.substr(digest_hex, 2) != "  ") bad("bad digest line");
          hex = l.substr(0, digest_hex);
          const std::string_view path = l.substr(digest_hex + 2);
          for (k = next; k < n && entries[k].path != path; ++k) {
          }
          if (k == n) bad("digest line names no entry of the batch still due");
        } else {
          // "<index> <hex>  -" or "<index> -" (could not be read: recorded as an error later).
          const std::size_t space = l.find(' ');
          if (space == std::string_view::npos) bad("bad digest line");
          k = number<std::size_t>(l.substr(0, space), "file index");
          if (k >= n || k < next) bad("file index out of order");
          l.remove_prefix(space + 1);
          if (l == "-") {
            next = k + 1;
            continue;
          }
          if (l.size() != digest_hex + 3 || l.substr(digest_hex) != "  -") bad("bad digest line");
          hex = l.substr(0, digest_hex);
        }
        next = k + 1;
        RawEntry& e = entries[k];
        auto bytes = from_hex(hex);
        if (!bytes || bytes->size() != digest_hex / 2) bad("bad digest hex");
        if (is256) {
          std::copy(bytes->begin(), bytes->end(), e.record.sha256.begin());
          e.has_sha256 = true;
        } else {
          std::copy(bytes->begin(), bytes->end(), e.record.sha512.begin());
          e.has_sha512 = true;
        }
      }
    }
  }

  void stat_line(std::string_view l, RawEntry& e) {
    if (l == "-") return;
    std::string_view f[13];
    std::size_t count = 0;
    while (!l.empty()) {
      if (count == 13) bad("too many stat fields");
      std::size_t end = std::min(l.find(' '), l.size());
      f[count++] = l.substr(0, end);
      l.remove_prefix(end);
      if (!l.empty()) l.remove_prefix(1);
    }
    if (count != 13) bad("expected 13 stat fields");
    FileRecord& r = e.record;
    auto raw_mode = number<std::uint32_t>(f[0], "mode", 16);
    r.mode = raw_mode & 07777;
    switch (raw_mode & 0170000) {
      case 0100000: r.type = FileType::kRegular; break;
      case 0040000: r.type = FileType::kDirectory; break;
      case 0120000: r.type = FileType::kSymlink; break;
      case 0020000: r.type = FileType::kCharDevice; break;
      case 0060000: r.type = FileType::kBlockDevice; break;
      case 0010000: r.type = FileType::kFifo; break;
      case 0140000: r.type = FileType::kSocket; break;
      default: bad("unknown file type in mode " + std::string(f[0]));
    }
    r.inode = number<std::uint64_t>(f[1], "inode");
    r.links = number<std::uint64_t>(f[2], "link count");
    r.uid = number<std::uint32_t>(f[3], "uid");
    r.gid = number<std::uint32_t>(f[4], "gid");
    r.size = number<std::uint64_t>(f[5], "size");
    r.device = number<std::uint64_t>(f[6], "device");
    r.rdev_major = number<std::uint32_t>(f[7], "rdev major", 16);
    r.rdev_minor = number<std::uint32_t>(f[8], "rdev minor", 16);
    r.blocks = number<std::uint64_t>(f[9], "blocks");
    r.mtime = number<std::int64_t>(f[10], "mtime");
    r.ctime = number<std::int64_t>(f[11], "ctime");
    r.atime = number<std::int64_t>(f[12], "atime");
    e.stat_ok = true;
  }

  const std::vector<WalkRoot>& roots_;
  Cursor in_;
};

}  // namespace

std::vector<WalkRoot> plan(const Policy& policy) {
  std::vector<WalkRoot> roots;
  for (const Rule& rule : policy.rules()) {
    if (policy.is_stopped(rule.path)) continue;
    WalkRoot root;
    root.path = rule.path;
    root.depth = rule.depth;
    root.sha256 = rule.mask.has(Property::kSha256);
    root.sha512 = rule.mask.has(Property::kSha512);
    if (rule.depth != 0) {
      for (const std::string& stop : policy.stop_points()) {
        if (is_under(stop, rule.path)) root.prunes.push_back(stop);
      }
      for (const Rule& inner : policy.rules()) {
        if (is_under(inner.path, rule.path)) root.prunes.push_back(inner.path);
      }
      std::sort(root.prunes.begin(), root.prunes.end());
      // A subtree under a pruned subtree never comes up; keep the list short.
      std::vector<std::string> kept;
      for (std::string& p : root.prunes) {
        if (kept.empty() || !is_under(p, kept.back())) kept.push_back(std::move(p));
      }
      root.prunes = std::move(kept);
    }
    roots.push_back(std::move(root));
  }
  return roots;
}

std::string script(const std::vector<WalkRoot>& roots, std::size_t max_output,
                   std::string_view path) {
  bool sha256 = false, sha512 = false;
  for (const WalkRoot& r : roots) {
    sha256 = sha256 || r.sha256;
    sha512 = sha512 || r.sha512;
  }
  std::string s = script_prologue(path, sha256, sha512, true);
  s += "walk() {\n";
  for (std::size_t i = 0; i < roots.size(); ++i) {
    const WalkRoot& r = roots[i];
    std::string flags = std::string(r.sha256 ? "256" : "") + (r.sha512 ? ",512" : "");
    s += "printf 'R " + std::to_string(i) + "\\n'\n";
    s +=
        find_command(r, "-exec sh -c \"$B\" sh " + sh_quote(flags.empty() ? "-" : flags) + " {} +");
    s += "\nprintf 'E " + std::to_string(i) + " %d\\n' $?\n";
  }
  s += "printf 'X\\n'\n}\n";
  s += script_epilogue(max_output);
  return s;
}

std::string children_script(const WalkRoot& root, std::size_t max_output, std::string_view path) {
  WalkRoot one_level = root;
  one_level.depth = 1;
  std::string s = script_prologue(path, false, false, false);
  s += "walk() {\n";
  s += find_command(one_level, "-print0");
  s += "\nprintf 'X\\n'\n}\n";
  s += script_epilogue(max_output);
  return s;
}

Result<ParsedOutput> parse(const std::vector<WalkRoot>& roots, std::string_view output) {
  return Parser(roots, output).run();
}

Result<std::optional<std::vector<std::string>>> parse_children(const WalkRoot& root,
                                                               std::string_view output) {
  // The marker follows a NUL (or nothing), so a name ending in "X\n" cannot fake it.
  if (output != "X\n" && !output.ends_with(std::string_view("\0X\n", 3))) {
    return std::optional<std::vector<std::string>>();
  }
  output.remove_suffix(2);
  std::vector<std::string> children;
  while (!output.empty()) {
    std::size_t z = output.find('\0');
    if (z == std::string_view::npos) return fail("guest listing of " + root.path + " is cut");
    std::string_view path = output.substr(0, z);
    output.remove_prefix(z + 1);
    if (path == root.path) continue;
    if (!is_under(path, root.path) ||
        path.find('/', root.path.size() + (root.path == "/" ? 0 : 1)) != std::string_view::npos) {
      return fail("guest listing of " + root.path + " names " + std::string(path) +
                  ", which is not an entry directly below it");
    }
    children.emplace_back(path);
  }
  return std::optional(std::move(children));
}

}  // namespace mchain::measure::bulk
