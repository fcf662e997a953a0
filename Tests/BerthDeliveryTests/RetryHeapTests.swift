import Foundation
import Testing
@testable import BerthDelivery

@Suite struct RetryHeapTests {
    @Test func popsWhatIsDueEarliestFirst() {
        var heap = RetryHeap()
        let base = Date(timeIntervalSince1970: 1_000)
        for (offset, row) in [(30, 3), (10, 1), (20, 2), (40, 4), (10, 5)] {
            heap.insert(base.addingTimeInterval(TimeInterval(offset)), row: Int64(row))
        }
        #expect(heap.earliest == base.addingTimeInterval(10))
        #expect(Set(heap.popDue(base.addingTimeInterval(15))) == [1, 5])
        #expect(heap.popDue(base.addingTimeInterval(30)) == [2, 3])
        #expect(heap.count == 1)
        #expect(heap.popDue(base).isEmpty)
    }

    @Test func randomOrderMatchesSorting() {
        var heap = RetryHeap()
        var times: [(Double, Int64)] = []
        for row in 0..<2000 {
            let t = Double.random(in: 0..<10_000)
            times.append((t, Int64(row)))
            heap.insert(Date(timeIntervalSince1970: t), row: Int64(row))
        }
        var popped: [Int64] = []
        for limit in stride(from: 0.0, through: 10_000, by: 250) {
            popped += heap.popDue(Date(timeIntervalSince1970: limit))
        }
        #expect(heap.isEmpty)
        let expected = times.sorted { $0.0 < $1.0 }.map(\.1)
        #expect(popped.count == expected.count)
        // Within each 250 s window the order is by time, so the whole sequence is sorted by time.
        let due = Dictionary(uniqueKeysWithValues: times.map { ($0.1, $0.0) })
        #expect(zip(popped, popped.dropFirst()).allSatisfy { due[$0]! <= due[$1]! })
    }
}
