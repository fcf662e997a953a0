/// `seq-number = nz-number / "*"` (RFC 3501 §9): a message number or UID, or the largest
/// one in use.
public enum IMAPSequenceNumber: Sendable, Hashable {
    case number(UInt32)
    /// `*`
    case last
}

/// `seq-range = seq-number ":" seq-number`; a single number is a range of one.
/// RFC 3501 §9: "2:4" and "4:2" are the same; `first` and `last` keep the client's order.
public struct IMAPSequenceRange: Sendable, Hashable {
    public var first: IMAPSequenceNumber
    public var last: IMAPSequenceNumber

    public init(_ first: IMAPSequenceNumber, _ last: IMAPSequenceNumber) {
        self.first = first
        self.last = last
    }

    public init(_ single: IMAPSequenceNumber) {
        self.init(single, single)
    }

    public init(_ number: UInt32) {
        self.init(.number(number))
    }

    public init(_ range: ClosedRange<UInt32>) {
        self.init(.number(range.lowerBound), .number(range.upperBound))
    }
}

/// `sequence-set = (seq-number / seq-range) *("," sequence-set)` (RFC 3501 §9), or `$`,
/// the saved search result (RFC 5182 §2).
public enum IMAPSequenceSet: Sendable, Hashable {
    case ranges([IMAPSequenceRange])
    /// `$`
    case lastSearchResult

    public init(_ ranges: IMAPSequenceRange...) {
        self = .ranges(ranges)
    }
}
