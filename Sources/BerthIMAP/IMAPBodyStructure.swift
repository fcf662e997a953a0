/// `body` (RFC 3501 §7.4.2, §9): a message's MIME structure, for FETCH BODY and
/// BODYSTRUCTURE. Built by the MIME layer; this layer only encodes it.
public indirect enum IMAPBodyStructure: Sendable, Hashable {
    case singlePart(IMAPBodyPart)
    case multipart(IMAPMultipartBody)
}

/// `body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]`
public struct IMAPBodyPart: Sendable, Hashable {
    /// `media-basic`: "TEXT", "IMAGE", "APPLICATION"...
    public var type: String
    public var subtype: String
    public var fields: IMAPBodyFields
    public var kind: Kind
    /// Sent with BODYSTRUCTURE only.
    public var extensionData: Extension?

    public indirect enum Kind: Sendable, Hashable {
        case basic
        /// `body-type-text`: lines of the body.
        case text(lines: UInt32)
        /// `body-type-msg` (message/rfc822): the encapsulated message.
        case message(envelope: IMAPEnvelope, body: IMAPBodyStructure, lines: UInt32)
    }

    /// `body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]`
    public struct Extension: Sendable, Hashable {
        public var md5: String?
        public var disposition: IMAPBodyDisposition?
        /// Empty is NIL; one is a string; more are a list.
        public var language: [String]
        public var location: String?

        public init(md5: String? = nil, disposition: IMAPBodyDisposition? = nil, language: [String] = [],
                    location: String? = nil) {
            self.md5 = md5
            self.disposition = disposition
            self.language = language
            self.location = location
        }
    }

    public init(type: String, subtype: String, fields: IMAPBodyFields, kind: Kind = .basic, extensionData: Extension? = nil) {
        self.type = type
        self.subtype = subtype
        self.fields = fields
        self.kind = kind
        self.extensionData = extensionData
    }
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets`
public struct IMAPBodyFields: Sendable, Hashable {
    public var parameters: [IMAPBodyParameter]
    public var id: String?
    public var description: String?
    /// `body-fld-enc`: "7BIT", "BASE64"...
    public var encoding: String
    public var octets: UInt32

    public init(parameters: [IMAPBodyParameter] = [], id: String? = nil, description: String? = nil,
                encoding: String = "7BIT", octets: UInt32) {
        self.parameters = parameters
        self.id = id
        self.description = description
        self.encoding = encoding
        self.octets = octets
    }
}

public struct IMAPBodyParameter: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`
public struct IMAPBodyDisposition: Sendable, Hashable {
    public var type: String
    public var parameters: [IMAPBodyParameter]

    public init(type: String, parameters: [IMAPBodyParameter] = []) {
        self.type = type
        self.parameters = parameters
    }
}

/// `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`
public struct IMAPMultipartBody: Sendable, Hashable {
    public var parts: [IMAPBodyStructure]
    public var subtype: String
    /// Sent with BODYSTRUCTURE only.
    public var extensionData: Extension?

    /// `body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]`
    public struct Extension: Sendable, Hashable {
        public var parameters: [IMAPBodyParameter]
        public var disposition: IMAPBodyDisposition?
        public var language: [String]
        public var location: String?

        public init(parameters: [IMAPBodyParameter] = [], disposition: IMAPBodyDisposition? = nil,
                    language: [String] = [], location: String? = nil) {
            self.parameters = parameters
            self.disposition = disposition
            self.language = language
            self.location = location
        }
    }

    public init(parts: [IMAPBodyStructure], subtype: String, extensionData: Extension? = nil) {
        self.parts = parts
        self.subtype = subtype
        self.extensionData = extensionData
    }
}
