//! Trees: the encoded listing of one directory. A tree is stored as a blob of type
//! [`BlobType::Tree`](crate::BlobType), so an unchanged directory encodes to the same bytes,
//! gets the same id and is stored once.

use crate::codec::{Reader, Writer};
use crate::{FormatError, Id};

/// Seconds and nanoseconds since the Unix epoch, as `stat` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

/// What kind of file system object a node is. Sockets are never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    File = 1,
    Dir = 2,
    Symlink = 3,
    Fifo = 4,
    CharDevice = 5,
    BlockDevice = 6,
}

impl NodeKind {
    fn from_u8(v: u8) -> Result<Self, FormatError> {
        Ok(match v {
            1 => NodeKind::File,
            2 => NodeKind::Dir,
            3 => NodeKind::Symlink,
            4 => NodeKind::Fifo,
            5 => NodeKind::CharDevice,
            6 => NodeKind::BlockDevice,
            _ => return Err(FormatError::invalid("node kind", format!("{v}"))),
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            NodeKind::File => "file",
            NodeKind::Dir => "dir",
            NodeKind::Symlink => "symlink",
            NodeKind::Fifo => "fifo",
            NodeKind::CharDevice => "chardev",
            NodeKind::BlockDevice => "blockdev",
        }
    }
}

/// One piece of a file's content, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Content {
    /// A data blob; its length comes from the index.
    Chunk(Id),
    /// A hole of this many bytes: never read, never stored, restored as a hole.
    Hole(u64),
}

/// One directory entry with all of its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The name as the file system gave it: any bytes but `/` and NUL, not UTF-8 necessarily.
    pub name: Vec<u8>,
    pub kind: Option<NodeKind>,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// User and group names at backup time, empty when the id had no name.
    pub user: Vec<u8>,
    pub group: Vec<u8>,
    pub mtime: Timestamp,
    pub atime: Timestamp,
    pub ctime: Timestamp,
    /// Logical size in bytes (files), target length (symlinks), 0 otherwise.
    pub size: u64,
    pub dev: u64,
    pub inode: u64,
    pub nlink: u64,
    /// Device number of character and block devices.
    pub rdev: u64,
    /// Symlink target, as bytes.
    pub target: Vec<u8>,
    /// Extended attributes of every namespace, POSIX ACLs included as their
    /// `system.posix_acl_*` attributes; sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub content: Vec<Content>,
    /// The tree of a directory.
    pub subtree: Option<Id>,
}

impl Node {
    pub fn kind(&self) -> NodeKind {
        self.kind.unwrap_or(NodeKind::File)
    }
    pub fn is_dir(&self) -> bool {
        self.kind == Some(NodeKind::Dir)
    }
    /// The name for display; bytes that are not UTF-8 are escaped as `\xNN`.
    pub fn display_name(&self) -> String {
        escape_bytes(&self.name)
    }
}

/// Whether `name` may name a node: 1 to 4096 bytes, not `.` or `..`, no `/` or NUL. The
/// decoder enforces it; writers check it first so they never store a tree readers refuse.
pub fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name != b"."
        && name != b".."
        && !name.iter().any(|&b| b == b'/' || b == 0)
}

/// Renders bytes for people: valid UTF-8 as is, every other byte as `\xNN`.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// A directory listing: nodes sorted by name, names unique.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

const TREE_VERSION: u8 = 1;
const MAX_NAME: usize = 4096;
const MAX_XATTR_VALUE: usize = 1 << 20;

impl Tree {
    /// Sorts by name; the encoding requires it, and a sorted tree's id depends only on content.
    pub fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.nodes.len() * 128);
        w.u8(TREE_VERSION);
        w.varint(self.nodes.len() as u64);
        for n in &self.nodes {
            encode_node(&mut w, n);
        }
        w.into_inner()
    }

    pub fn decode(data: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(data);
        let v = r.u8("tree version")?;
        if v != TREE_VERSION {
            return Err(FormatError::Version {
                what: "tree",
                found: v as u64,
                supported: 1,
            });
        }
        let n = r.varint("node count")?;
        // A node takes at least 20 bytes; refuse counts the data cannot hold.
        if n.saturating_mul(20) > r.remaining() as u64 {
            return Err(FormatError::invalid(
                "node count",
                format!("{n} nodes do not fit"),
            ));
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let node = decode_node(&mut r)?;
            if nodes
                .last()
                .is_some_and(|prev: &Node| prev.name >= node.name)
            {
                return Err(FormatError::invalid(
                    "node name",
                    "names not sorted or repeated",
                ));
            }
            nodes.push(node);
        }
        r.finish()?;
        Ok(Tree { nodes })
    }
}

fn encode_ts(w: &mut Writer, t: Timestamp) {
    w.varint_signed(t.secs);
    w.varint(t.nanos as u64);
}

fn decode_ts(r: &mut Reader<'_>, what: &'static str) -> Result<Timestamp, FormatError> {
    let secs = r.varint_signed(what)?;
    let nanos = r.varint_u32(what)?;
    if nanos >= 1_000_000_000 {
        return Err(FormatError::invalid(what, "nanoseconds out of range"));
    }
    Ok(Timestamp { secs, nanos })
}

fn encode_node(w: &mut Writer, n: &Node) {
    w.bytes(&n.name);
    w.u8(n.kind() as u8);
    w.varint(n.mode as u64);
    w.varint(n.uid as u64);
    w.varint(n.gid as u64);
    w.bytes(&n.user);
    w.bytes(&n.group);
    encode_ts(w, n.mtime);
    encode_ts(w, n.atime);
    encode_ts(w, n.ctime);
    w.varint(n.size);
    w.varint(n.dev);
    w.varint(n.inode);
    w.varint(n.nlink);
    w.varint(n.rdev);
    w.bytes(&n.target);
    w.varint(n.xattrs.len() as u64);
    for (k, v) in &n.xattrs {
        w.bytes(k);
        w.bytes(v);
    }
    w.varint(n.content.len() as u64);
    for c in &n.content {
        match c {
            Content::Chunk(id) => {
                w.u8(0);
                w.raw(&id.0);
            }
            Content::Hole(len) => {
                w.u8(1);
                w.varint(*len);
            }
        }
    }
    match &n.subtree {
        None => w.u8(0),
        Some(id) => {
            w.u8(1);
            w.raw(&id.0);
        }
    }
}

fn decode_node(r: &mut Reader<'_>) -> Result<Node, FormatError> {
    let name = r.bytes("node name", MAX_NAME)?.to_vec();
    if !is_valid_name(&name) {
        return Err(FormatError::invalid(
            "node name",
            "empty, '.', '..', or contains '/' or NUL",
        ));
    }
    let kind = NodeKind::from_u8(r.u8("node kind")?)?;
    let mode = r.varint_u32("mode")?;
    if mode > 0o7777 {
        return Err(FormatError::invalid(
            "mode",
            format!("{mode:o} has bits beyond 07777"),
        ));
    }
    let uid = r.varint_u32("uid")?;
    let gid = r.varint_u32("gid")?;
    let user = r.bytes("user name", MAX_NAME)?.to_vec();
    let group = r.bytes("group name", MAX_NAME)?.to_vec();
    let mtime = decode_ts(r, "mtime")?;
    let atime = decode_ts(r, "atime")?;
    let ctime = decode_ts(r, "ctime")?;
    let size = r.varint("size")?;
    let dev = r.varint("dev")?;
    let inode = r.varint("inode")?;
    let nlink = r.varint("nlink")?;
    let rdev = r.varint("rdev")?;
    let target = r.bytes("symlink target", MAX_NAME)?.to_vec();
    let nx = r.varint("xattr count")?;
    if nx.saturating_mul(2) > r.remaining() as u64 {
        return Err(FormatError::invalid("xattr count", "does not fit"));
    }
    let mut xattrs = Vec::with_capacity(nx as usize);
    for _ in 0..nx {
        let k = r.bytes("xattr name", 255)?.to_vec();
        let v = r.bytes("xattr value", MAX_XATTR_VALUE)?.to_vec();
        // Sorted and unique, so one set of attributes has one encoding (and one tree id).
        if xattrs
            .last()
            .is_some_and(|(prev, _): &(Vec<u8>, Vec<u8>)| *prev >= k)
        {
            return Err(FormatError::invalid(
                "xattr name",
                "names not sorted or repeated",
            ));
        }
        xattrs.push((k, v));
    }
    let nc = r.varint("content count")?;
    if nc.saturating_mul(2) > r.remaining() as u64 {
        return Err(FormatError::invalid("content count", "does not fit"));
    }
    let mut content = Vec::with_capacity(nc as usize);
    for _ in 0..nc {
        match r.u8("content tag")? {
            0 => content.push(Content::Chunk(Id(r.array("chunk id")?))),
            1 => content.push(Content::Hole(r.varint("hole length")?)),
            t => return Err(FormatError::invalid("content tag", format!("{t}"))),
        }
    }
    let subtree = match r.u8("subtree tag")? {
        0 => None,
        1 => Some(Id(r.array("subtree id")?)),
        t => return Err(FormatError::invalid("subtree tag", format!("{t}"))),
    };
    if kind != NodeKind::File && !content.is_empty() {
        return Err(FormatError::invalid("content", "only files have content"));
    }
    if (kind == NodeKind::Dir) != subtree.is_some() {
        return Err(FormatError::invalid(
            "subtree",
            "a directory and only a directory has one",
        ));
    }
    Ok(Node {
        name,
        kind: Some(kind),
        mode,
        uid,
        gid,
        user,
        group,
        mtime,
        atime,
        ctime,
        size,
        dev,
        inode,
        nlink,
        rdev,
        target,
        xattrs,
        content,
        subtree,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(name: &[u8]) -> Node {
        Node {
            name: name.to_vec(),
            kind: Some(NodeKind::File),
            mode: 0o4755,
            uid: 1000,
            gid: 100,
            user: b"alice".to_vec(),
            group: b"users".to_vec(),
            mtime: Timestamp {
                secs: 1_700_000_000,
                nanos: 123_456_789,
            },
            atime: Timestamp { secs: -5, nanos: 0 },
            ctime: Timestamp {
                secs: 1,
                nanos: 999_999_999,
            },
            size: 3,
            dev: 2049,
            inode: 42,
            nlink: 1,
            rdev: 0,
            target: vec![],
            xattrs: vec![(b"user.k".to_vec(), b"v".to_vec())],
            content: vec![Content::Chunk(Id([9; 32])), Content::Hole(4096)],
            subtree: None,
        }
    }

    #[test]
    fn golden_tree() {
        let t = Tree {
            nodes: vec![file(b"a")],
        };
        let enc = t.encode();
        let mut expect: Vec<u8> = vec![1, 1, 1, b'a', 1, 0xed, 0x13, 0xe8, 0x07, 0x64];
        expect.extend(b"\x05alice\x05users");
        expect.extend([0x80, 0xc4, 0x9f, 0xd5, 0x0c, 0x95, 0x9a, 0xef, 0x3a]); // mtime: zigzag(1.7e9), 123456789
        expect.extend([0x09, 0x00]); // atime
        expect.extend([0x02, 0xff, 0x93, 0xeb, 0xdc, 0x03]); // ctime
        expect.extend([3, 0x81, 0x10, 42, 1, 0, 0]);
        expect.extend(b"\x01\x06user.k\x01v");
        expect.extend([2, 0]);
        expect.extend([9u8; 32]);
        expect.extend([1, 0x80, 0x20, 0]);
        assert_eq!(enc, expect);
        assert_eq!(Tree::decode(&enc).unwrap(), t);
    }

    #[test]
    fn rejects_unsorted_and_bad_names() {
        let t = Tree {
            nodes: vec![file(b"b"), file(b"a")],
        };
        assert!(Tree::decode(&t.encode()).is_err());
        for bad in [&b"a/b"[..], b"..", b"."] {
            assert!(
                Tree::decode(
                    &Tree {
                        nodes: vec![file(bad)]
                    }
                    .encode()
                )
                .is_err()
            );
        }
    }

    #[test]
    fn rejects_unsorted_xattrs() {
        let mut f = file(b"a");
        f.xattrs = vec![(b"user.b".to_vec(), vec![]), (b"user.a".to_vec(), vec![])];
        assert!(
            Tree::decode(
                &Tree {
                    nodes: vec![f.clone()]
                }
                .encode()
            )
            .is_err()
        );
        f.xattrs = vec![(b"user.a".to_vec(), vec![]), (b"user.a".to_vec(), vec![1])];
        assert!(Tree::decode(&Tree { nodes: vec![f] }.encode()).is_err());
    }

    #[test]
    fn escapes_non_utf8() {
        assert_eq!(escape_bytes(b"caf\xe9.txt"), "caf\\xe9.txt");
    }

    proptest! {
        #[test]
        fn tree_roundtrip(names in proptest::collection::btree_set(proptest::collection::vec(1u8..=255, 1..20), 0..10),
                          secs: i64, nanos in 0u32..1_000_000_000, size: u64) {
            let nodes: Vec<Node> = names.into_iter()
                .filter(|n| !n.contains(&b'/') && n != b"." && n != b"..")
                .map(|n| { let mut f = file(&n); f.mtime = Timestamp { secs, nanos }; f.size = size; f })
                .collect();
            let t = Tree { nodes };
            prop_assert_eq!(Tree::decode(&t.encode()).unwrap(), t);
        }

        #[test]
        fn tree_decode_never_panics(data: Vec<u8>) {
            let _ = Tree::decode(&data);
        }
    }
}
