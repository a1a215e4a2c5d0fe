// --output-skb-metadata / --filter-skb-expr's resolution of `skb->a->b`
// against BTF: on a small sk_buff this test writes (anonymous members,
// bitfields, a __be16, an enum, nested structs: the shapes the real one has),
// and on the live kernel's BTF, where the answers are the kernel's own.
#include <bpf/btf.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tracer/filter/member_compare.h"
#include "tracer/kernel/btf_discovery.h"
#include "tracer/kernel/btf_member_access.h"

using namespace pwru;

namespace {

// struct net_device { char pad[8]; int ifindex; };            (size 16)
// struct atomic { int counter; }; struct refcount { struct atomic refs; };
// struct sk_buff {
//   struct { struct sk_buff *next; union { struct net_device *dev; unsigned long dev_scratch; }; };  // at 0
//   char cb[48];                  // at 16
//   unsigned int len;             // at 64
//   __u8 pkt_type:3, ignore_df:1; // at byte 68, bits 2..4 and 5
//   __be16 protocol;              // at 70
//   struct refcount users;        // at 72
//   enum skb_drop_reason reason;  // at 76
//   signed char prio;             // at 80
//   _Bool cloned;                 // at 81
// };
struct SmallKernel {
    BtfPtr btf{btf__new_empty()};

    SmallKernel() {
        struct btf* b = btf.get();
        int int_t = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
        int uint_t = btf__add_int(b, "unsigned int", 4, 0);
        int u8_t = btf__add_int(b, "unsigned char", 1, 0);
        int u16_t = btf__add_int(b, "unsigned short", 2, 0);
        int ulong_t = btf__add_int(b, "unsigned long", 8, 0);
        int char_t = btf__add_int(b, "char", 1, BTF_INT_CHAR);
        int schar_t = btf__add_int(b, "signed char", 1, BTF_INT_SIGNED | BTF_INT_CHAR);
        int bool_t = btf__add_int(b, "_Bool", 1, BTF_INT_BOOL);
        int be16_t = btf__add_typedef(b, "__be16", btf__add_typedef(b, "__u16", u16_t));
        int cb_t = btf__add_array(b, int_t, char_t, 48);

        int dev = btf__add_struct(b, "net_device", 16);
        REQUIRE(btf__add_field(b, "ifindex", int_t, 64, 0) == 0);
        int dev_ptr = btf__add_ptr(b, dev);

        int atomic = btf__add_struct(b, "atomic", 4);
        REQUIRE(btf__add_field(b, "counter", int_t, 0, 0) == 0);
        int refcount = btf__add_struct(b, "refcount", 4);
        REQUIRE(btf__add_field(b, "refs", atomic, 0, 0) == 0);

        int reason = btf__add_enum(b, "skb_drop_reason", 4);
        REQUIRE(btf__add_enum_value(b, "SKB_NOT_DROPPED_YET", 0) == 0);
        REQUIRE(btf__add_enum_value(b, "SKB_DROP_REASON_NOT_SPECIFIED", 2) == 0);
        REQUIRE(btf__add_enum_value(b, "SKB_DROP_REASON_NO_SOCKET", 3) == 0);

        int skb = btf__add_struct(b, "sk_buff", 88);  // fields come right after their struct
        int skb_ptr = btf__add_ptr(b, skb);
        int dev_union = btf__add_union(b, nullptr, 8);
        REQUIRE(btf__add_field(b, "dev", dev_ptr, 0, 0) == 0);
        REQUIRE(btf__add_field(b, "dev_scratch", ulong_t, 0, 0) == 0);
        int head = btf__add_struct(b, nullptr, 16);
        REQUIRE(btf__add_field(b, "next", skb_ptr, 0, 0) == 0);
        REQUIRE(btf__add_field(b, nullptr, dev_union, 64, 0) == 0);

        // sk_buff's members, on a second struct of the same name would break
        // lookups: rebuild it as the one named struct instead.
        int skb_full = btf__add_struct(b, "sk_buff_full", 88);
        REQUIRE(btf__add_field(b, nullptr, head, 0, 0) == 0);
        REQUIRE(btf__add_field(b, "cb", cb_t, 16 * 8, 0) == 0);
        REQUIRE(btf__add_field(b, "len", uint_t, 64 * 8, 0) == 0);
        REQUIRE(btf__add_field(b, "pkt_type", u8_t, 68 * 8 + 2, 3) == 0);
        REQUIRE(btf__add_field(b, "ignore_df", u8_t, 68 * 8 + 5, 1) == 0);
        REQUIRE(btf__add_field(b, "protocol", be16_t, 70 * 8, 0) == 0);
        REQUIRE(btf__add_field(b, "users", refcount, 72 * 8, 0) == 0);
        REQUIRE(btf__add_field(b, "reason", reason, 76 * 8, 0) == 0);
        REQUIRE(btf__add_field(b, "prio", schar_t, 80 * 8, 0) == 0);
        REQUIRE(btf__add_field(b, "cloned", bool_t, 81 * 8, 0) == 0);
        (void)skb;
        (void)skb_full;
    }
};

Result<MemberAccess> resolve(const SmallKernel& k, const std::string& expr) {
    return resolve_member_access(k.btf.get(), "skb", "sk_buff_full", expr, "--output-skb-metadata");
}

std::string error_of(const Result<MemberAccess>& r) { return r ? std::string("(resolved)") : r.error().what; }

}  // namespace

TEST_CASE("member access: offsets through anonymous members and pointers, the reads a probe makes", "[unit]") {
    SmallKernel k;
    auto len = resolve(k, "skb->len");
    REQUIRE(len);
    CHECK(len->leaf == "len");
    CHECK(len->field.levels == 1);
    CHECK(len->field.off[0] == 64);
    CHECK(len->field.size == 4);
    CHECK(len->kind == MemberAccess::Kind::Unsigned);

    // dev is in an unnamed union in an unnamed struct: found, at byte 8;
    // then the pointer is read and ifindex is at 8 in the net_device.
    auto ifindex = resolve(k, " skb -> dev -> ifindex ");
    REQUIRE(ifindex);
    CHECK(ifindex->expr == "skb->dev->ifindex");
    CHECK(ifindex->leaf == "ifindex");
    CHECK(ifindex->field.levels == 2);
    CHECK(ifindex->field.off[0] == 8);
    CHECK(ifindex->field.off[1] == 8);
    CHECK(ifindex->field.is_signed == 1);

    auto dev = resolve(k, "skb->dev");
    REQUIRE(dev);
    CHECK(dev->kind == MemberAccess::Kind::Pointer);
    CHECK(dev->field.size == 8);

    // '.' adds to the same object's offset: no pointer read.
    auto users = resolve(k, "skb->users.refs.counter");
    REQUIRE(users);
    CHECK(users->field.levels == 1);
    CHECK(users->field.off[0] == 72);
    CHECK(users->leaf == "counter");
}

TEST_CASE("member access: bitfields, big-endian, enum, signed char and bool leaves", "[unit]") {
    SmallKernel k;
    auto pkt_type = resolve(k, "skb->pkt_type");
    REQUIRE(pkt_type);
    CHECK(pkt_type->field.off[0] == 68);
    CHECK(pkt_type->field.size == 1);
    CHECK(pkt_type->field.bit_shift == 2);
    CHECK(pkt_type->field.bit_size == 3);
    CHECK(format_member_value(*pkt_type, 3) == "0x3");  // pwru prints bitfields in hex

    auto proto = resolve(k, "skb->protocol");
    REQUIRE(proto);
    CHECK(proto->field.big_endian == 1);  // typedef __be16 -> __u16 -> unsigned short
    CHECK(proto->field.size == 2);

    auto reason = resolve(k, "skb->reason");
    REQUIRE(reason);
    CHECK(reason->kind == MemberAccess::Kind::Enum);
    CHECK(format_member_value(*reason, 3) == "SKB_DROP_REASON_NO_SOCKET");
    CHECK(format_member_value(*reason, 7) == "7");

    auto prio = resolve(k, "skb->prio");
    REQUIRE(prio);
    CHECK(prio->kind == MemberAccess::Kind::Char);
    CHECK(prio->field.is_signed == 1);
    CHECK(format_member_value(*prio, 'a') == "'a'");
    CHECK(format_member_value(*prio, 1) == "0x1");

    auto cloned = resolve(k, "skb->cloned");
    REQUIRE(cloned);
    CHECK(format_member_value(*cloned, 1) == "true");
    CHECK(format_member_value(*cloned, 0) == "false");
    CHECK(format_member_value(*resolve(k, "skb->dev"), 0) == "0x0");
    CHECK(format_member_value(*resolve(k, "skb->dev->ifindex"), uint64_t(-5)) == "-5");
}

TEST_CASE("member access: every mistake is one line that says what to write", "[unit]") {
    SmallKernel k;
    CHECK(error_of(resolve(k, "sk->len")).find("must start with skb") != std::string::npos);
    CHECK(error_of(resolve(k, "skbx->len")).find("must start with skb") != std::string::npos);
    CHECK(error_of(resolve(k, "skb")).find("name a member") != std::string::npos);
    CHECK(error_of(resolve(k, "skb.len")).find("write skb->len") != std::string::npos);
    CHECK(error_of(resolve(k, "skb->nosuch")).find("has no member 'nosuch'") != std::string::npos);
    CHECK(error_of(resolve(k, "skb->dev.ifindex")).find("write skb->dev->ifindex") != std::string::npos);
    CHECK(error_of(resolve(k, "skb->users->refs")).find("not a pointer: use '.'") != std::string::npos);
    CHECK(error_of(resolve(k, "skb->cb")).find("is an array") != std::string::npos);
    CHECK(error_of(resolve(k, "skb->users")).find("name one of its members") != std::string::npos);
    CHECK(error_of(resolve(k, "skb->len[0]")).find("unexpected '['") != std::string::npos);
    CHECK(error_of(resolve(k, "skb->")).find("a member name must follow") != std::string::npos);
    for (const char* e : {"sk->len", "skb->nosuch", "skb->cb", "skb.len"}) {
        auto r = resolve(k, e);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::BadInput);
        CHECK(r.error().what.find('\n') == std::string::npos);
        CHECK(r.error().what.find("--output-skb-metadata") == 0);
    }
}

TEST_CASE("--filter-skb-expr: operators, numbers, enum names, and values that cannot fit", "[unit]") {
    SmallKernel k;
    auto compile = [&](const std::string& e) {
        return compile_member_compare(k.btf.get(), "skb", "sk_buff_full", e, "--filter-skb-expr");
    };
    auto gt = compile("skb->len > 1000");
    REQUIRE(gt);
    CHECK(gt->cmp.op == PWRU_CMP_GT);
    CHECK(gt->cmp.value == 1000);
    CHECK(gt->cmp.field.off[0] == 64);

    // '->' is not mistaken for '>'; '=' means '==' as in pwru
    auto eq = compile("skb->dev->ifindex = 0x0b");
    REQUIRE(eq);
    CHECK(eq->cmp.op == PWRU_CMP_EQ);
    CHECK(eq->cmp.value == 11);
    CHECK(eq->cmp.field.levels == 2);

    struct Case {
        const char* expr;
        pwru_cmp_op op;
        uint64_t value;
    };
    for (const Case& c : {Case{"skb->len != 010", PWRU_CMP_NE, 8}, Case{"skb->len<=5", PWRU_CMP_LE, 5},
                          Case{"skb->len >= 4294967295", PWRU_CMP_GE, 4294967295u},
                          Case{"skb->protocol == 0x86dd", PWRU_CMP_EQ, 0x86dd},
                          Case{"skb->reason == SKB_DROP_REASON_NO_SOCKET", PWRU_CMP_EQ, 3},
                          Case{"skb->dev->ifindex < -1", PWRU_CMP_LT, uint64_t(-1)},
                          Case{"skb->cloned == true", PWRU_CMP_EQ, 1}, Case{"skb->pkt_type == 7", PWRU_CMP_EQ, 7}}) {
        INFO(c.expr);
        auto r = compile(c.expr);
        REQUIRE(r);
        CHECK(r->cmp.op == c.op);
        CHECK(r->cmp.value == c.value);
    }

    auto error = [&](const std::string& e) {
        auto r = compile(e);
        if (r) return std::string("(compiled)");
        CHECK(r.error().kind == ErrorKind::BadInput);
        CHECK(r.error().what.find('\n') == std::string::npos);
        return r.error().what;
    };
    CHECK(error("skb->len").find("no comparison") != std::string::npos);
    CHECK(error("skb->len ! 3").find("'!' must be '!='") != std::string::npos);
    CHECK(error("skb->len == ").find("must follow '=='") != std::string::npos);
    CHECK(error("skb->len === 3").find("one operator only") != std::string::npos);
    CHECK(error("skb->len == x1").find("is not a number") != std::string::npos);
    CHECK(error("skb->len == 4294967296").find("does not fit: skb->len is a 32-bit unsigned number") !=
          std::string::npos);
    CHECK(error("skb->len > -1").find("does not fit") != std::string::npos);
    CHECK(error("skb->pkt_type == 8").find("bitfield of 3-bit") != std::string::npos);
    CHECK(error("skb->prio == 128").find("does not fit") != std::string::npos);
    CHECK(error("skb->reason == SKB_NOPE").find("not a number nor one of the enumerators") != std::string::npos);
    CHECK(error("skb->nosuch == 1").find("has no member 'nosuch'") != std::string::npos);
}

TEST_CASE("member access on the live kernel's sk_buff: what pwru's examples name", "[unit]") {
    const char* vmlinux = "/sys/kernel/btf/vmlinux";
    if (!std::filesystem::exists(vmlinux)) {
        WARN("no " << vmlinux << ": the live-kernel part is not run");
        return;
    }
    auto btf = load_kernel_btf(vmlinux);
    REQUIRE(btf);
    auto live = [&](const std::string& e) {
        return resolve_member_access(btf->get(), "skb", "sk_buff", e, "--output-skb-metadata");
    };
    auto ifindex = live("skb->dev->ifindex");
    REQUIRE(ifindex);
    CHECK(ifindex->field.levels == 2);
    CHECK(ifindex->field.size == 4);
    CHECK(ifindex->kind == MemberAccess::Kind::Signed);
    auto mark = live("skb->mark");
    REQUIRE(mark);
    CHECK(mark->field.levels == 1);
    CHECK(mark->kind == MemberAccess::Kind::Unsigned);
    auto proto = live("skb->protocol");
    REQUIRE(proto);
    CHECK(proto->field.big_endian == 1);
    auto users = live("skb->users.refs.counter");
    REQUIRE(users);
    CHECK(users->field.levels == 1);
    auto reason = compile_member_compare(btf->get(), "skb", "sk_buff", "skb->pkt_type == 0", "--filter-skb-expr");
    REQUIRE(reason);
    CHECK(reason->cmp.field.bit_size == 3);
    CHECK_FALSE(live("skb->dev->name"));  // a char array: the IFACE column shows it

    // --output-xdp-metadata / --filter-xdp-expr: the same on struct xdp_buff
    auto xdp_ifindex =
        resolve_member_access(btf->get(), "xdp", "xdp_buff", "xdp->rxq->dev->ifindex", "--output-xdp-metadata");
    REQUIRE(xdp_ifindex);
    CHECK(xdp_ifindex->field.levels == 3);
    auto queue =
        compile_member_compare(btf->get(), "xdp", "xdp_buff", "xdp->rxq->queue_index == 0", "--filter-xdp-expr");
    REQUIRE(queue);
    CHECK(queue->cmp.field.levels == 2);
    auto wrong_root = resolve_member_access(btf->get(), "xdp", "xdp_buff", "skb->len", "--output-xdp-metadata");
    REQUIRE_FALSE(wrong_root);
    CHECK(wrong_root.error().what.find("must start with xdp") != std::string::npos);
}
