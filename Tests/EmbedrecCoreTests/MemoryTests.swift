import XCTest
@testable import EmbedrecCore

final class MemoryTests: XCTestCase {
    /// A huge-page buffer starts on a 2 MiB boundary (a cache line when too small for two huge
    /// pages), holds its initial values, and is freed like any other.
    func testHugePageBuffersAreAlignedInitialisedAndFreed() {
        for count in [5, 1 << 19, (3 << 20) + 7] {  // 20 bytes, 2 MiB, 12 MiB + 28 bytes of floats
            let buffer = Buffer<Float>(repeating: 1.5, count: count, hugePages: true)
            let alignment = count * 4 >= 2 * HugePages.size ? HugePages.size : 64
            XCTAssertEqual(Int(bitPattern: buffer.base) % alignment, 0, "\(count) floats")
            XCTAssertEqual(buffer[0], 1.5)
            XCTAssertEqual(buffer[count - 1], 1.5)
            buffer[count / 2] = 2
            XCTAssertEqual(buffer.buffer.reduce(0) { $0 + Double($1) }, 1.5 * Double(count) + 0.5)
        }
    }
}
