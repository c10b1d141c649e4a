//! A key trie: each node is the state after some keys; a node with a binding
//! completes a sequence, a node with children is a pending state.

use super::Key;

#[derive(Debug, Clone, Default)]
pub(super) struct Trie {
    /// Index of the binding this sequence completes.
    pub binding: Option<usize>,
    children: Vec<(Key, Trie)>,
}

impl Trie {
    pub fn insert(&mut self, keys: &[Key], binding: usize) {
        let mut node = self;
        for key in keys {
            let pos = match node.children.iter().position(|(k, _)| k == key) {
                Some(pos) => pos,
                None => {
                    node.children.push((*key, Trie::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[pos].1;
        }
        node.binding = Some(binding);
    }

    /// The node reached by `keys`, if any sequence starts with them.
    pub fn find(&self, keys: &[Key]) -> Option<&Trie> {
        let mut node = self;
        for key in keys {
            node = &node.children.iter().find(|(k, _)| k == key)?.1;
        }
        Some(node)
    }

    /// Bindings completed below this node, in file order.
    pub fn descendants(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<&Trie> = self.children.iter().map(|(_, t)| t).collect();
        while let Some(node) = stack.pop() {
            out.extend(node.binding);
            stack.extend(node.children.iter().map(|(_, t)| t));
        }
        out.sort_unstable();
        out
    }
}
