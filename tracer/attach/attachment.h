// One owner per kind of attachment, in bpftrace's manner (its AttachedProbe):
// a factory in this folder attaches and hands back the owner, and the owner
// detaches what it holds when it is destroyed. A Session keeps its owners in
// the order they were made and destroys them in reverse, so that the last
// attached (clone probes, traced tc programs) goes before the skb probes whose
// state they extend.
#pragma once

#include <cstddef>
#include <vector>

#include "tracer/attach/kprobe_links.h"
#include "tracer/kernel/bpf_owners.h"

namespace pwru {

class Attachment {
  public:
    virtual ~Attachment() = default;
    Attachment() = default;
    Attachment(const Attachment&) = delete;
    Attachment& operator=(const Attachment&) = delete;
};

// Links libbpf made (tp_btf programs, single kprobes and kretprobes):
// destroyed newest first.
class LinkSet final : public Attachment {
  public:
    ~LinkSet() override;
    void add(LinkPtr link) { links_.push_back(std::move(link)); }

  private:
    std::vector<LinkPtr> links_;
};

// kprobe-multi links. Each destroy waits for an RCU grace period: they are
// destroyed on kprobe_threads() threads so that the waits overlap.
class KprobeMultiLinks final : public Attachment {
  public:
    ~KprobeMultiLinks() override;
    void add(LinkPtr link) { links_.push_back(std::move(link)); }

  private:
    std::vector<LinkPtr> links_;
};

// Classic kprobes (a perf event and a BPF link each): every event disabled
// first, then closed from its CPU on several threads (kprobe_teardown.h).
class KprobeSet final : public Attachment {
  public:
    ~KprobeSet() override;
    void add(KprobeLink link) { links_.push_back(std::move(link)); }

  private:
    std::vector<KprobeLink> links_;
};

}  // namespace pwru
