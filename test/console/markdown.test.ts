import { describe, expect, it } from '@jest/globals';
import { escapeMarkdown } from '../../src/cards/format.js';

/** The console's parser is a browser module (plain JavaScript); its shape, as far as these tests use it. */
interface MarkdownModule {
  parseMarkdown(markdown: string): Array<Record<string, unknown>>;
  parseInline(text: string): Array<Record<string, unknown>>;
}
const modulePath = '../../src/console/public/js/markdown.js';
const { parseMarkdown, parseInline } = (await import(modulePath)) as MarkdownModule;

describe('the console markdown parser (card detail)', () => {
  it('reads a card detail: paragraphs, a pipe table, escapes', () => {
    const detail = [
      'Similar visits: female, age 54–74, chief complaint abdominal pain. No relaxation was needed.',
      '',
      '| Item | Similar visits | All visits | Lift |',
      '| --- | --- | --- | --- |',
      '| Lipase | 75% (30 of 40) | 20% | 3.8× |',
      '| CT abdomen \\| pelvis | 50% (20 of 40) | 10% | 5.0× |',
      '',
      'Items given to fewer than 11 visits are not shown.',
    ].join('\n');
    const blocks = parseMarkdown(detail);
    expect(blocks.map((block) => block.type)).toEqual(['paragraph', 'table', 'paragraph']);
    const table = blocks[1] as { header: unknown[][]; rows: Array<Array<Array<{ text: string }>>> };
    expect(table.header).toHaveLength(4);
    expect(table.rows).toHaveLength(2);
    expect(table.rows[1]![0]).toEqual([{ type: 'text', text: 'CT abdomen | pelvis' }]);
  });

  it('keeps hostile text as text: raw HTML, javascript: links, and whatever escapeMarkdown let through', () => {
    for (const hostile of ['<img src=x onerror=alert(1)>', '<script>alert(1)</script>', '[click](javascript:alert(1))', '**<b>x</b>**']) {
      const escaped = escapeMarkdown(hostile);
      const inlines = parseInline(escaped);
      const text = JSON.stringify(inlines);
      expect(text).not.toContain('"link"');
      // What the builder escaped reads back exactly as the original.
      expect(inlines).toEqual([{ type: 'text', text: hostile }]);
    }
    // Unescaped, a javascript: or relative link is still not a link.
    expect(parseInline('[x](javascript:alert(1))')).toEqual([{ type: 'text', text: '[x](javascript:alert(1))' }]);
    expect(parseInline('[x](/admin/rules)')).toEqual([{ type: 'text', text: '[x](/admin/rules)' }]);
    expect(parseInline('see [CMS](https://www.cms.gov/x)')).toEqual([
      { type: 'text', text: 'see ' },
      { type: 'link', href: 'https://www.cms.gov/x', children: [{ type: 'text', text: 'CMS' }] },
    ]);
  });

  it('reads emphasis, code and lists, and leaves snake_case alone', () => {
    expect(parseInline('**Lipase** in *most* visits, `R10.9`, snake_case_name')).toEqual([
      { type: 'strong', children: [{ type: 'text', text: 'Lipase' }] },
      { type: 'text', text: ' in ' },
      { type: 'em', children: [{ type: 'text', text: 'most' }] },
      { type: 'text', text: ' visits, ' },
      { type: 'code', text: 'R10.9' },
      { type: 'text', text: ', snake_case_name' },
    ]);
    expect(parseMarkdown('- one\n- two\n\n1. first')).toEqual([
      { type: 'list', ordered: false, items: [[{ type: 'text', text: 'one' }], [{ type: 'text', text: 'two' }]] },
      { type: 'list', ordered: true, items: [[{ type: 'text', text: 'first' }]] },
    ]);
    expect(parseInline('2 * 3 * 4 and a lone ** here')).toEqual([{ type: 'text', text: '2 * 3 * 4 and a lone ** here' }]);
  });
});
