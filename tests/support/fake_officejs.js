// A stand-in for Microsoft's office.js, for driving the add-in in a headless browser (tests/test_xlwings.py).
//
// It holds one workbook (window.__BAOCAO_BOOK: sheets with values, number formats, visibility, protection)
// and implements the part of the Excel JavaScript API that xlwings' Office.js client and baocao.js use:
// reading the book (Excel.run, load/sync, used ranges, number formats), and the actions the server answers
// with (fills, values, sheets added/deleted/activated, protection, dialogs). Like Excel, it refuses to change
// the fill of a protected sheet. Everything done is recorded in window.__fake for the test to read.
(function () {
  const book = window.__BAOCAO_BOOK;
  const fake = (window.__fake = { actions: {}, dialogs: [], log: [] });

  function colName(n) {
    let s = "";
    for (n += 1; n > 0; n = Math.floor((n - 1) / 26)) s = String.fromCharCode(65 + ((n - 1) % 26)) + s;
    return s;
  }
  function cellRef(address) {
    const m = /^\$?([A-Z]+)\$?(\d+)$/.exec(address);
    let c = 0;
    for (const ch of m[1]) c = c * 26 + ch.charCodeAt(0) - 64;
    return [Number(m[2]) - 1, c - 1];
  }
  const loadable = (obj) => Object.assign(obj, { load: () => obj });
  const nullObject = () => loadable({ isNullObject: true });
  const collection = (items) => loadable({ items });

  class Range {
    constructor(sheet, r, c, nr, nc) {
      Object.assign(this, { sheet, r, c, nr, nc, isNullObject: false, worksheet: sheet });
      const range = this;
      this.format = {
        fill: {
          set color(value) {
            range.eachCell((key) => (range.sheet.fills[key] = value.toUpperCase()));
          },
          clear() {
            range.eachCell((key) => delete range.sheet.fills[key]);
          },
        },
        set columnWidth(value) {
          range.sheet.check();
          range.sheet.widths[range.c] = value;
        },
        set wrapText(value) {
          range.sheet.check();
        },
      };
    }
    load() {
      return this;
    }
    eachCell(fn) {
      this.sheet.check();
      for (let r = this.r; r < this.r + this.nr; r++)
        for (let c = this.c; c < this.c + this.nc; c++) fn(`${colName(c)}${r + 1}`, r, c);
    }
    get address() {
      const first = `${colName(this.c)}${this.r + 1}`;
      const last = `${colName(this.c + this.nc - 1)}${this.r + this.nr}`;
      return `${this.sheet.name}!${first}:${last}`;
    }
    get rowCount() {
      return this.nr;
    }
    get columnCount() {
      return this.nc;
    }
    grid(source, blank) {
      const out = [];
      for (let r = this.r; r < this.r + this.nr; r++) {
        const row = [];
        for (let c = this.c; c < this.c + this.nc; c++) row.push(((source[r] || [])[c] ?? blank));
        out.push(row);
      }
      return out;
    }
    get values() {
      return this.grid(this.sheet.values, "");
    }
    set values(values) {
      this.sheet.check();
      values.forEach((row, i) =>
        row.forEach((v, j) => {
          const r = this.r + i;
          while (this.sheet.values.length <= r) this.sheet.values.push([]);
          this.sheet.values[r][this.c + j] = v;
        }),
      );
    }
    get numberFormat() {
      return this.grid(this.sheet.formats, "General");
    }
  }

  class Worksheet {
    constructor(data) {
      this.name = data.name;
      this.visibility = data.visibility || "Visible";
      this.values = data.values || [];
      this.formats = data.formats || [];
      this.fills = {};
      this.widths = {};
      this.showGridlines = true;
      this.isNullObject = false;
      const sheet = this;
      this.protection = {
        protected: Boolean(data.protected),
        load: () => sheet.protection,
        unprotect(password) {
          fake.log.push(["unprotect", sheet.name, password ?? null]);
          sheet.protection.protected = false;
        },
        protect(options, password) {
          fake.log.push(["protect", sheet.name, password ?? null]);
          sheet.protection.protected = true;
        },
      };
      this.names = collection([]);
      this.tables = collection([]);
      this.shapes = collection([]);
      this.charts = collection([]);
      this.pivotTables = collection([]);
      this.pageLayout = { getPrintAreaOrNullObject: nullObject };
    }
    check() {
      if (this.protection.protected) throw new Error(`The sheet ${this.name} is protected.`);
    }
    load() {
      return this;
    }
    get position() {
      return workbook.worksheets.items.indexOf(this);
    }
    set position(index) {
      const items = workbook.worksheets.items;
      items.splice(items.indexOf(this), 1);
      items.splice(index, 0, this);
    }
    getUsedRangeOrNullObject() {
      const rows = this.values.length;
      const cols = Math.max(0, ...this.values.map((row) => row.length));
      return rows && cols ? new Range(this, 0, 0, rows, cols) : nullObject();
    }
    getRange(address) {
      const [a, b] = address.split("!").pop().split(":");
      const [r0, c0] = cellRef(a);
      const [r1, c1] = cellRef(b || a);
      return new Range(this, r0, c0, r1 - r0 + 1, c1 - c0 + 1);
    }
    getRangeByIndexes(r, c, nr, nc) {
      return new Range(this, r, c, nr, nc);
    }
    activate() {
      workbook.active = this;
    }
    delete() {
      const items = workbook.worksheets.items;
      items.splice(items.indexOf(this), 1);
    }
  }

  const workbook = {
    name: book.name,
    load: () => workbook,
    names: collection([]),
    application: loadable({ calculationMode: "Automatic" }),
    getSelectedRange: () => workbook.worksheets.items[0].getRange("A1"),
  };
  workbook.worksheets = {
    items: book.sheets.map((s) => new Worksheet(s)),
    load: () => workbook.worksheets,
    getItem: (name) => workbook.worksheets.items.find((s) => s.name === name),
    getItemOrNullObject: (name) => workbook.worksheets.getItem(name) || nullObject(),
    getActiveWorksheet: () => workbook.active || workbook.worksheets.items[0],
    add(name) {
      const sheet = new Worksheet({ name });
      workbook.worksheets.items.push(sheet);
      return sheet;
    },
  };

  const context = { workbook, application: workbook.application, sync: async () => {} };
  window.Excel = {
    run: async (callback) => callback(context),
    RequestContext: function () {
      return context;
    },
    ShapeType: { image: "Image" },
    ClearApplyTo: { all: "All", contents: "Contents", formats: "Formats" },
  };

  const ready = Promise.resolve({ host: "Excel", platform: "PC" });
  window.Office = {
    onReady: (callback) => (callback ? ready.then(callback) : ready),
    context: {
      platform: "PC",
      contentLanguage: "vi-VN",
      requirements: {
        // Excel 2021 / Microsoft 365 without the newest sets: ExcelApi up to 1.12
        isSetSupported: (name, version) =>
          name.toLowerCase() === "excelapi" && Number(String(version).split(".")[1] || 0) <= 12,
      },
      ui: {
        displayDialogAsync(url, options, callback) {
          fake.dialogs.push(url);
          callback({ status: "succeeded", value: { addEventHandler() {}, close() {} } });
        },
      },
    },
    actions: {
      associate(name, fn) {
        fake.actions[name] = fn;
      },
    },
    AsyncResultStatus: { Failed: "failed", Succeeded: "succeeded" },
    EventType: { DialogMessageReceived: "message", DialogEventReceived: "event" },
  };

  // What the test reads back.
  fake.state = () => ({
    sheets: workbook.worksheets.items.map((s) => ({
      name: s.name,
      fills: s.fills,
      values: s.values,
      protected: s.protection.protected,
    })),
    active: (workbook.active || workbook.worksheets.items[0]).name,
  });
})();
