import Foundation

/// Queue rows by the time one of their recipients is due: a binary min-heap, so the
/// runner finds what is due without scanning the whole queue. Entries may be stale (the
/// recipient was sent or rescheduled since); the runner checks each row it pops.
struct RetryHeap {
    private(set) var items: [(due: Date, row: Int64)] = []

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var earliest: Date? { items.first?.due }

    mutating func insert(_ due: Date, row: Int64) {
        items.append((due, row))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].due < items[parent].due else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns every row due at `now`, earliest first (a row may repeat).
    mutating func popDue(_ now: Date) -> [Int64] {
        var rows: [Int64] = []
        while let first = items.first, first.due <= now {
            rows.append(first.row)
            let last = items.removeLast()
            guard !items.isEmpty else { break }
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count && items[left].due < items[smallest].due { smallest = left }
                if right < items.count && items[right].due < items[smallest].due { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return rows
    }

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }
}
