#if canImport(Glibc)
import Glibc
#endif

/// Allocation sizes come from a foreign caller, so they are computed with overflow checks and
/// compared with the machine's memory before anything is allocated: asking for 10^9 factors
/// must be an error message, not an OOM kill of the user's kernel.
public enum MemoryBudget {
    /// Physical memory in bytes (sysconf), or Int.max when unknown.
    public static var physicalBytes: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let size = sysconf(Int32(_SC_PAGESIZE))
        if pages <= 0 || size <= 0 { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? Int.max : bytes
    }

    /// Product of non-negative counts, or an error naming `what` on overflow.
    public static func product(_ factors: [Int], what: String) throws -> Int {
        var total = 1
        for f in factors {
            guard f >= 0 else { throw CoreError.invalid("\(what): negative size \(f)") }
            let (p, o) = total.multipliedReportingOverflow(by: f)
            if o { throw CoreError(.outOfMemory, "\(what): size overflows (\(factors.map(String.init).joined(separator: " x ")))") }
            total = p
        }
        return total
    }

    /// Throws `.outOfMemory` when `bytes` exceeds 80% of physical memory.
    public static func check(bytes: Int, what: String) throws {
        let limit = physicalBytes / 10 * 8
        if bytes > limit {
            throw CoreError(.outOfMemory,
                "\(what) needs \(bytes / (1 << 20)) MiB but this machine has \(physicalBytes / (1 << 20)) MiB of memory; use smaller sizes")
        }
    }
}

/// A fixed-size heap buffer of trivially-copyable values, freed on deinit. Hot loops take its
/// base pointer once instead of going through Array's bounds checks and uniqueness checks.
public final class Buffer<Element> {
    public let count: Int
    public let base: UnsafeMutablePointer<Element>
    /// Allocated by `posix_memalign` (freed with `free`), for huge pages.
    private let pageAligned: Bool

    /// `hugePages`: for tables read at random, where each access would otherwise be a TLB
    /// miss. The buffer starts on a 64-byte cache line; from 2 MiB on, it starts on a 2 MiB
    /// boundary and its whole 2 MiB pages are offered to the kernel as transparent huge pages
    /// (`madvise`; a hint the kernel may ignore). Only whole pages inside the buffer: a huge
    /// page over its end would count in the process's memory without being used.
    public init(repeating value: Element, count: Int, hugePages: Bool = false) {
        precondition(count >= 0)
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Element>.stride
        let huge = bytes >= HugePages.size
        var raw: UnsafeMutableRawPointer? = nil
        if hugePages, posix_memalign(&raw, huge ? HugePages.size : 64, bytes) == 0, let raw {
            if huge { _ = madvise(raw, bytes & ~(HugePages.size - 1), HugePages.advice) }
            base = raw.bindMemory(to: Element.self, capacity: max(count, 1))
            pageAligned = true
        } else {
            base = UnsafeMutablePointer<Element>.allocate(capacity: max(count, 1))
            pageAligned = false
        }
        base.initialize(repeating: value, count: count)
    }

    public convenience init(copying source: UnsafePointer<Element>, count: Int, zero: Element) {
        self.init(repeating: zero, count: count)
        base.update(from: source, count: count)
    }

    deinit {
        base.deinitialize(count: count)
        if pageAligned { free(base) } else { base.deallocate() }
    }

    @inline(__always) public subscript(i: Int) -> Element {
        get { base[i] }
        set { base[i] = newValue }
    }

    public var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: base, count: count) }
}

/// Transparent huge pages on Linux.
enum HugePages {
    static let size = 1 << 21
    static let advice = Int32(MADV_HUGEPAGE)
}
